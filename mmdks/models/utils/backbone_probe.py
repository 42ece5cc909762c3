import weakref
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn

# Where a backbone does not say what input it takes: ImageNet's crop.
DEFAULT_PROBE_SIZE = 224

# One probe per built backbone and size: every branch of a DKSNeck and the
# model's build-time check read the same one.
_PROBES: 'weakref.WeakKeyDictionary[nn.Module, dict]' = \
    weakref.WeakKeyDictionary()


class ModuleRun(NamedTuple):
    """What one module of a backbone did in the probe's forward pass."""
    order: int  # completion order, 0 first (a container after its children)
    calls: int  # how often it ran
    # Per-sample shape of its output: a tuple of ints, or for a tuple/list
    # output one entry per element (None for non-tensors).
    shape: Union[Tuple[int, ...], List[Optional[Tuple[int, ...]]], None]
    is_output: bool  # its output is (a view of) one of the backbone's
    # Its output was changed in place after it returned (a residual add, an
    # inplace activation): what a hook keeps is not what it returned.
    mutated: bool


class BackboneProbe(NamedTuple):
    """One no-grad eval-mode forward of a dummy image through a backbone.

    ``runs`` holds every named submodule that ran, in completion order.
    ``main_order`` is the completion order of the last module that produces
    part of the backbone's output: a module finishing at or after it, or
    returning the output itself, is no place for a branch to fork.
    """
    input_shape: Tuple[int, int, int]  # (C, H, W)
    runs: Dict[str, ModuleRun]
    # What the backbone returned, as it returned it (nested for backbones
    # such as Conformer's, whose head takes the nesting).
    outputs: Any
    main_order: int

    @property
    def output_shapes(self) -> List[Tuple[int, ...]]:
        """Per-sample shapes of the backbone's output tensors, flattened
        in order."""
        return [tuple(t.shape[1:]) for t in _tensors(self.outputs)]


def probe_size_of(backbone: nn.Module,
                  probe_size: Union[int, Tuple[int, int], None] = None
                  ) -> Tuple[int, int]:
    """``(H, W)`` of the probe input: ``probe_size`` if given, else the
    input size the backbone declares (``img_size`` of ViT-like backbones,
    their patch embedding's ``init_input_size``, a timm model's
    ``pretrained_cfg``), else 224."""
    size = probe_size
    for owner, attr in ((backbone, 'img_size'),
                        (getattr(backbone, 'patch_embed', None),
                         'init_input_size')):
        if size is None and owner is not None:
            size = getattr(owner, attr, None)
    timm_cfg = getattr(getattr(backbone, 'timm_model', None),
                       'pretrained_cfg', None)
    if size is None and isinstance(timm_cfg, dict):
        size = timm_cfg.get('input_size', (None, ) * 3)[1:]
    if size is None or None in tuple(size if isinstance(size, (list, tuple))
                                     else (size, )):
        size = DEFAULT_PROBE_SIZE
    if isinstance(size, int):
        size = (size, size)
    if not (len(size) == 2 and all(isinstance(s, int) and s > 0
                                   for s in size)):
        raise ValueError(f'aux_neck.probe_size={probe_size!r} must be an int '
                         'or (H, W) of positive ints')
    return tuple(size)


def input_channels(model: nn.Module) -> int:
    """The image channels ``model`` takes: its first ``Conv2d``'s input
    channels (3 if it has none)."""
    first_conv = next(
        (m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first_conv.in_channels if first_conv is not None else 3


def _tensors(output: Any) -> List[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _shape_of(output: Any):
    if isinstance(output, torch.Tensor):
        return tuple(output.shape[1:])
    if isinstance(output, (tuple, list)):
        return [
            tuple(o.shape[1:]) if isinstance(o, torch.Tensor) else None
            for o in output
        ]
    return None


def probe_backbone(
        backbone: nn.Module,
        probe_size: Union[int, Tuple[int, int], None] = None
) -> BackboneProbe:
    """Run a dummy image through ``backbone`` once and record every module.

    MMPretrain backbones share no attribute for their stage widths or
    strides, and some only run at their own input size; one forward pass
    at that size (:func:`probe_size_of`) works for all of them. The probe
    leaves no trace: train/eval modes are restored and eval mode keeps norm
    statistics untouched. The result is cached per backbone and size.

    Args:
        backbone (nn.Module): A built backbone.
        probe_size (int | tuple[int, int], optional): Input size; see
            :func:`probe_size_of`.

    Returns:
        BackboneProbe: The modules that ran, their output shapes and order.

    Raises:
        ValueError: If the backbone rejects the probe input.
    """
    size = probe_size_of(backbone, probe_size)
    cache = _PROBES.setdefault(backbone, {})
    if size in cache:
        return cache[size]
    names = {module: name for name, module in backbone.named_modules()
             if name}
    order: Dict[str, int] = {}
    calls: Dict[str, int] = {}
    outputs: Dict[str, Any] = {}
    versions: Dict[str, List[int]] = {}

    def record(module: nn.Module, args: tuple, output: Any) -> None:
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        if name not in order:
            order[name] = len(order)
            # Kept alive until the end, so that no storage is reused and
            # compared by mistake.
            outputs[name] = output
            versions[name] = [t._version for t in _tensors(output)]

    param = next(backbone.parameters())
    input_shape = (input_channels(backbone), *size)
    dummy = torch.zeros(1, *input_shape, device=param.device,
                        dtype=param.dtype)
    modes = {m: m.training for m in backbone.modules()}
    handles = [m.register_forward_hook(record) for m in names]
    backbone.eval()
    try:
        with torch.no_grad():
            result = backbone(dummy)
    except Exception as e:
        raise ValueError(
            f'the backbone rejects a {"x".join(map(str, input_shape))} '
            f'probe input ({type(e).__name__}: {e}); set '
            'model.aux_neck.probe_size to an input size it takes') from e
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes.items():
            m.training = mode
    results = _tensors(result)
    storages = {t.untyped_storage().data_ptr() for t in results}
    runs = {}
    for name in sorted(order, key=order.get):
        tensors = _tensors(outputs[name])
        is_output = any(t.untyped_storage().data_ptr() in storages
                        for t in tensors)
        mutated = [t._version for t in tensors] != versions[name]
        runs[name] = ModuleRun(order[name], calls[name],
                               _shape_of(outputs[name]), is_output, mutated)
    producers = [r.order for r in runs.values() if r.is_output]
    main_order = max(producers) if producers else len(runs) - 1
    probe = BackboneProbe(input_shape, runs, result, main_order)
    cache[size] = probe
    return probe
