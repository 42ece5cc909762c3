"""Where a DKS branch reads the backbone: a tap on one of its modules."""
import difflib
from typing import Any, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from .backbone_probe import BackboneProbe

# What a branch receives, by the per-sample shape of the tapped output.
KINDS = {3: 'map', 2: 'tokens', 1: 'vector'}
LAYOUTS = ('NCHW', 'NHWC')
# Attributes under which backbones list their stages, in the order tried:
# ResNet-family names, then the usual ModuleLists (or lists of names).
STAGE_ATTRS = ('res_layers', 'stages', 'layers', 'groups')


class Tap(NamedTuple):
    """A branch's input, as resolved against a probed backbone.

    Attributes:
        name (str): The module, as ``backbone.named_modules()`` spells it.
        index (int, optional): The element of a tuple or list output.
        layout (str, optional): ``'NCHW'`` or ``'NHWC'`` for maps (the neck
            hands NHWC maps to the branch as NCHW).
        kind (str): ``'map'`` (C, H, W), ``'tokens'`` (L, C) or
            ``'vector'`` (C, ), per sample, as the branch receives it.
        shape (tuple[int]): That per-sample shape at the probe size.
        stage (int, optional): The backbone stage whose end this is, in the
            numbering of ``from_stage``; None elsewhere.
        main_shape (tuple): ``(C, H, W)`` a map branch should reach: the
            width of the backbone's (last) output, and the resolution of
            that output, or of the last stage where the backbone pools it
            (None where neither is a map).
    """
    name: str
    index: Optional[int]
    layout: Optional[str]
    kind: str
    shape: Tuple[int, ...]
    stage: Optional[int]
    main_shape: Tuple[int, Optional[int], Optional[int]]

    @property
    def channels(self) -> int:
        """Channels of the branch input."""
        return self.shape[0] if self.kind == 'map' else self.shape[-1]

    def describe(self) -> str:
        element = '' if self.index is None else f'[{self.index}]'
        return f'tap {self.name!r}{element} ({self.kind} {self.shape})'


def _root(backbone: nn.Module) -> Tuple[str, nn.Module]:
    """A wrapper's model (``TIMMBackbone.timm_model``): the prefix its
    module names need, and the model. Backbones with more than one child
    are their own root."""
    children = list(backbone.named_children())
    if len(children) == 1:
        return f'{children[0][0]}.', children[0][1]
    return '', backbone


def stage_names(backbone: nn.Module) -> Optional[List[str]]:
    """The module names of the backbone's stages, which ``from_stage``
    counts: a timm model's ``feature_info`` modules, else the first of
    ``res_layers``, ``stages``, ``layers``, ``groups`` that lists modules
    (by name or as a ModuleList); None when the backbone has no such list.
    """
    prefix, root = _root(backbone)
    info = getattr(root, 'feature_info', None)
    if isinstance(info, list) and info and all(
            isinstance(i, dict) and 'module' in i for i in info):
        return [prefix + i['module'] for i in info]
    for attr in STAGE_ATTRS:
        value = getattr(backbone, attr, None)
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(v, str) for v in value):
            return list(value)
        if isinstance(value, (nn.ModuleList, nn.Sequential)) and len(value):
            return [f'{attr}.{i}' for i in range(len(value))]
    return None


def _module_name(backbone: nn.Module, probe: BackboneProbe, cfg: dict,
                 where: str) -> str:
    """The module a branch config taps, by ``tap`` or ``from_stage``."""
    if ('tap' in cfg) == ('from_stage' in cfg):
        raise ValueError(
            f'{where} must name exactly one of tap (a module name, see '
            'tools/analysis_tools/list_taps.py) and from_stage (a stage '
            f'index), got {cfg!r}')
    if 'from_stage' in cfg:
        stage = cfg.pop('from_stage')
        stages = stage_names(backbone)
        if stages is None:
            raise ValueError(
                f'{where}.from_stage: {type(backbone).__name__} lists no '
                'stages; name the module with tap=... (list them with '
                'tools/analysis_tools/list_taps.py CONFIG)')
        if not (isinstance(stage, int) and 0 <= stage < len(stages)):
            raise ValueError(
                f'{where}.from_stage={stage!r} must be a stage index in '
                f'0..{len(stages) - 1} of {type(backbone).__name__} '
                f'({", ".join(stages)})')
        return stages[stage]
    name = cfg.pop('tap')
    if not isinstance(name, str):
        raise ValueError(
            f'{where}.tap={name!r} must be a module name (a str, e.g. '
            "'layer3'; list them with tools/analysis_tools/list_taps.py); "
            'a stage index is from_stage')
    all_names = [n for n, _ in backbone.named_modules() if n]
    prefix, _ = _root(backbone)
    for candidate in (name, prefix + name):
        if candidate in all_names:
            return candidate
    close = difflib.get_close_matches(name, all_names, n=5, cutoff=0.5)
    hint = f'nearest: {", ".join(close)}' if close else \
        'list them with tools/analysis_tools/list_taps.py CONFIG'
    raise ValueError(f'{where}.tap={name!r} is not a module of '
                     f'{type(backbone).__name__} ({hint})')


def _container_end(backbone: nn.Module, probe: BackboneProbe,
                   name: str) -> str:
    """``name``, or for a pure container that never runs itself (a
    ModuleList or ModuleDict, as Twins' ``stages.1`` or VAN's ``blocks2``)
    the child that finished last in the probe, recursively: the output the
    container's stage ends with."""
    module = dict(backbone.named_modules()).get(name)
    while module is not None and name not in probe.runs and \
            type(module).forward is nn.Module.forward:
        ran = [(f'{name}.{child}', sub)
               for child, sub in module.named_children()
               if any(n == f'{name}.{child}' or
                      n.startswith(f'{name}.{child}.') for n in probe.runs)]
        if not ran:
            break
        name, module = max(
            ran, key=lambda item: max(
                run.order for n, run in probe.runs.items()
                if n == item[0] or n.startswith(item[0] + '.')))
    return name


def _layout(shape: Tuple[int, ...], given: Optional[str], what: str,
            where: str) -> Optional[str]:
    """The layout of a (per-sample) 3-D output at a square probe."""
    if given is not None:
        if given not in LAYOUTS:
            raise ValueError(
                f'{where}.layout={given!r} must be one of {LAYOUTS}')
        return given
    if shape[1] == shape[2]:
        return 'NCHW'
    if shape[0] == shape[1]:
        return 'NHWC'
    raise ValueError(f'{where}: cannot tell whether {what} is NCHW or NHWC; '
                     "set layout='NCHW' or 'NHWC'")


def _main_shape(backbone: nn.Module,
                probe: BackboneProbe) -> Tuple[int, Optional[int],
                                               Optional[int]]:
    out = probe.output_shapes[-1]
    channels = out[0] if len(out) == 3 else out[-1]
    if len(out) == 3:
        return channels, out[1], out[2]
    # Pooled inside the backbone (ConvNeXt): the last stage's resolution.
    stages = stage_names(backbone) or []
    last = probe.runs.get(
        _container_end(backbone, probe, stages[-1])) if stages else None
    if last is not None and isinstance(last.shape, tuple) and \
            len(last.shape) == 3:
        return channels, last.shape[1], last.shape[2]
    return channels, None, None


def resolve_tap(backbone: nn.Module, probe: BackboneProbe, cfg: dict,
                where: str) -> Tap:
    """Resolve and check the tap of one branch config.

    Pops ``tap`` or ``from_stage``, ``tap_index`` and ``layout`` from
    ``cfg`` (the rest goes to the branch).

    Args:
        backbone (nn.Module): The built backbone.
        probe (BackboneProbe): Its probe.
        cfg (dict): The branch config, changed in place.
        where (str): The config path for messages,
            e.g. ``'aux_neck.branches[0]'``.

    Returns:
        Tap: The resolved tap.

    Raises:
        ValueError: For a tap that does not exist, never runs, runs more
            than once, is changed in place later, sits at or after the
            backbone's output, or gives something no branch takes.
    """
    named = _module_name(backbone, probe, cfg, where)
    name = _container_end(backbone, probe, named)
    index, layout = cfg.pop('tap_index', None), cfg.pop('layout', None)
    run = probe.runs.get(name)
    label = f'{where}: tap {name!r}'
    if run is None:
        raise ValueError(f'{label} does not run in the backbone\'s forward '
                         'pass; tap a module that does')
    if run.calls > 1:
        raise ValueError(f'{label} runs {run.calls} times in one forward '
                         'pass (a shared module); tap one that runs once')
    if run.is_output or run.order >= probe.main_order:
        raise ValueError(
            f'{label} is at or after the module that produces the '
            "backbone's output; tap an earlier module")
    if run.mutated:
        raise ValueError(
            f'{label}: its output is changed in place after it returns (a '
            'residual add or inplace activation follows); tap the '
            'enclosing block')
    shape = run.shape
    if isinstance(shape, list):
        if index is None:
            raise ValueError(
                f'{label} returns {len(shape)} outputs {shape}; choose one '
                'with tap_index')
        if not (isinstance(index, int) and -len(shape) <= index < len(shape)
                and shape[index] is not None):
            raise ValueError(f'{where}.tap_index={index!r} is not a tensor '
                             f'output of {name!r} {shape}')
        shape = shape[index]
    elif index is not None:
        raise ValueError(f'{where}.tap_index={index!r}: tap {name!r} '
                         f'returns one tensor {shape}; drop tap_index')
    if shape is None or len(shape) not in KINDS:
        raise ValueError(
            f'{label} outputs {shape}, but branches take maps (C, H, W), '
            'tokens (L, C) or vectors (C, ); tap another module')
    kind = KINDS[len(shape)]
    if kind == 'map':
        layout = _layout(shape, layout, f'{name!r} {shape}', where)
        if layout == 'NHWC':
            shape = (shape[2], shape[0], shape[1])
    elif layout is not None:
        raise ValueError(f'{where}.layout={layout!r} applies to maps, but '
                         f'tap {name!r} outputs {kind} {shape}')
    stages = stage_names(backbone) or []
    stage = stages.index(named) if named in stages else None
    return Tap(name, index, layout, kind, tuple(shape), stage,
               _main_shape(backbone, probe))


def tap_input(output: Any, tap: Tap) -> torch.Tensor:
    """What the branch of ``tap`` receives from the tapped module's
    ``output``: the chosen element, NHWC maps as (N, C, H, W) views."""
    x = output if tap.index is None else output[tap.index]
    return x.permute(0, 3, 1, 2) if tap.layout == 'NHWC' else x


class TapCandidate(NamedTuple):
    """One module of a probed backbone, as ``list_taps.py`` shows it."""
    name: str
    shape: Any  # per-sample output shape(s), as in ModuleRun
    stride: Optional[int]  # input size / map size, for maps
    usable: bool  # a branch may tap it (runs once, before the output)
    stage_end: Optional[int]  # 8 or 16 where the paper's rule picks it


def _stride(shape: Any, input_size: int) -> Optional[int]:
    if not (isinstance(shape, tuple) and len(shape) == 3):
        return None
    side = shape[1] if shape[1] == shape[2] else shape[0]
    return input_size // side if side and input_size % side == 0 else None


def tap_candidates(backbone: nn.Module,
                   probe: BackboneProbe) -> List[TapCandidate]:
    """Every module the probe ran, in completion order, with its output,
    stride and whether a branch may tap it; the ends of the stride-8 and
    stride-16 stages (where the paper forks its branches) are marked: the
    last usable module of that stride among the backbone's stages (see
    :func:`stage_names`), else among its shallowest modules.
    """
    runs = probe.runs
    usable = {
        name: run.calls == 1 and not run.is_output and not run.mutated
        and run.order < probe.main_order
        for name, run in runs.items()
    }
    strides = {name: _stride(run.shape, probe.input_shape[1])
               for name, run in runs.items()}
    stages = {_container_end(backbone, probe, n)
              for n in stage_names(backbone) or []}
    ends = {}
    for stride in (8, 16):
        names = [n for n in runs if usable[n] and strides[n] == stride]
        staged = [n for n in names if n in stages]
        if not staged and names:
            depth = min(n.count('.') for n in names)
            staged = [n for n in names if n.count('.') == depth]
        if staged:
            ends[staged[-1]] = stride
    return [
        TapCandidate(name, run.shape, strides[name], usable[name],
                     ends.get(name)) for name, run in runs.items()
    ]
