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
        self._outputs: Dict[str, Any] = {}
        self._recording = False
        for name, module in modules.items():
            module.register_forward_hook(functools.partial(self._keep, name))

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
