import functools
from typing import Any, Dict, Mapping

import torch.nn as nn


class OutputRecorder:
    """Keeps what chosen modules return while a forward pass runs.

    One forward hook per module stays registered for the recorder's life,
    so that a deep copy of the model (MMEngine's EMA) or a compiled graph
    keeps it; outside ``with recorder`` it returns at once. Inside, each
    module's output is kept under its name in a fresh dict, which the
    ``with`` statement returns and the recorder forgets on exit.
    :meth:`follow` re-hooks a module that was replaced after the recorder
    was made.

    Args:
        modules (Mapping[str, nn.Module]): The modules to record, by name.

    Example:
        >>> recorder = OutputRecorder({'layer3': backbone.layer3})
        >>> with recorder as outputs:
        ...     backbone(images)
        >>> outputs['layer3'].shape
    """

    def __init__(self, modules: Mapping[str, nn.Module]) -> None:
        self.names = tuple(modules)
        # The modules hooked, by name (see follow).
        self.modules: Dict[str, nn.Module] = {}
        self._outputs: Dict[str, Any] = {}
        self._recording = False
        for name, module in modules.items():
            self._hook(name, module)

    def _hook(self, name: str, module: nn.Module) -> None:
        self.modules[name] = module
        module.register_forward_hook(functools.partial(self._keep, name))

    def follow(self, root: nn.Module) -> None:
        """Record the modules now at the recorded names under ``root``.

        A model changed in place after it was built has new modules where
        the recorded ones were, without their hooks: MMEngine's ``sync_bn``
        (``convert_sync_batchnorm``) replaces every BN layer by a new
        SyncBN one. Those are hooked here; a name lookup per module, so it
        can run before every forward pass.

        Args:
            root (nn.Module): The module the names are relative to.
        """
        for name in self.names:
            module = root.get_submodule(name)
            if module is not self.modules[name]:
                self._hook(name, module)

    def _keep(self, name: str, module: nn.Module, args: tuple,
              output: Any) -> None:
        if not self._recording:
            return
        if name in self._outputs:
            raise RuntimeError(
                f'{name} ran twice in one forward pass, so its output is '
                'ambiguous; record a module that runs once')
        self._outputs[name] = output

    def __enter__(self) -> Dict[str, Any]:
        self._outputs, self._recording = {}, True
        return self._outputs

    def __exit__(self, *exc_info) -> None:
        self._outputs, self._recording = {}, False
