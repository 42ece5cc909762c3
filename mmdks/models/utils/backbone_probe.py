import math
import weakref
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

# One probe per built backbone: every branch of a DKSNeck reads the same one.
_PROBED: 'weakref.WeakKeyDictionary[nn.Module, List[Tuple[int, ...]]]' = \
    weakref.WeakKeyDictionary()

PROBE_SIZE = 64


def _input_shape(backbone: nn.Module) -> Tuple[int, int, int]:
    """(C, H, W) of a cheap dummy image the backbone accepts."""
    first_conv = next(
        (m for m in backbone.modules() if isinstance(m, nn.Conv2d)), None)
    channels = first_conv.in_channels if first_conv is not None else 3
    # Patch-embedding backbones may insist on their own image size.
    size = getattr(getattr(backbone, 'patch_embed', None), 'init_input_size',
                   None) or (PROBE_SIZE, PROBE_SIZE)
    return (channels, *size)


def probe_out_shapes(backbone: nn.Module) -> List[Tuple[int, ...]]:
    """Shapes (without batch) of the backbone's outputs, one per
    ``out_indices`` entry, from one no-grad eval-mode forward of a dummy
    image.

    MMPretrain backbones do not share an attribute for their stage widths;
    running them once is the one way that works for all of them. The probe
    leaves no trace: train/eval modes are restored and eval mode keeps norm
    statistics untouched. The result is cached per backbone.

    Args:
        backbone (nn.Module): A built backbone.

    Returns:
        list[tuple[int]]: e.g. ``[(256, 16, 16), (2048, 2, 2)]`` for a
        ResNet-50 with ``out_indices=(0, 3)``, ``[(192, )]`` for a ViT's
        class token.
    """
    if backbone in _PROBED:
        return _PROBED[backbone]
    modes = {m: m.training for m in backbone.modules()}
    param = next(backbone.parameters())
    dummy = torch.zeros(1, *_input_shape(backbone),
                        device=param.device, dtype=param.dtype)
    backbone.eval()
    try:
        with torch.no_grad():
            outs = backbone(dummy)
    finally:
        for m, mode in modes.items():
            m.training = mode
    if isinstance(outs, torch.Tensor):
        outs = (outs, )
    shapes = [tuple(o.shape[1:]) for o in outs]
    _PROBED[backbone] = shapes
    return shapes


def probe_branch_shapes(
        backbone: nn.Module,
        from_stage: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Probed shapes of stage ``from_stage`` and of the main (last) stage.

    Args:
        backbone (nn.Module): A built backbone with ``out_indices``.
        from_stage (int): A stage in ``out_indices`` before the last one.

    Returns:
        tuple: (branch input shape, main stage shape), without batch.
    """
    out_indices = list(backbone.out_indices)
    if from_stage not in out_indices[:-1]:
        raise ValueError(
            f'branch.from_stage={from_stage} is not a branch stage of '
            f'backbone.out_indices={tuple(out_indices)}')
    shapes = probe_out_shapes(backbone)
    return shapes[out_indices.index(from_stage)], shapes[-1]


def num_halvings(in_shape: Tuple[int, ...],
                 out_shape: Tuple[int, ...]) -> int:
    """Stride-2 steps from one (C, H, W) map to another's resolution."""
    return max(0, round(math.log2(in_shape[-1] / out_shape[-1])))


def resolve_in_channels(given: Optional[int], expected: int,
                        from_stage: int) -> int:
    """A branch's ``in_channels``: the probed one, or the typed one when it
    agrees."""
    if given is not None and given != expected:
        raise ValueError(
            f'branch.in_channels={given} does not match backbone stage '
            f'{from_stage}, which outputs {expected} channels; leave '
            'in_channels out to read it from the backbone')
    return expected
