import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmpretrain.registry import MODELS

from .stage_branch import (CONV_BRANCH_INIT, BaseBranch, rebuilt_stages,
                           stage_of)
from .taps import Tap


@MODELS.register_module()
class WRNStageBranch(BaseBranch):
    """An auxiliary branch that continues a :class:`WideResNet`.

    The reference DKS design: the branch rebuilds the groups after the
    tapped one with the backbone's own pre-activation blocks
    (``make_group``: same dropout and norm), its own block counts and an
    optional width factor, then BN-ReLU and global average pooling. For
    WRN-28-10 (n = 4): from ``groups.0``, ``num_blocks=[4, 2]``; from
    ``groups.1``, ``num_blocks=[4], widen_factor=2`` (1280 channels).

    Args:
        backbone (WideResNet): The built backbone; read, not stored.
        tap (Tap): The resolved tap, the end of group 0 or 1.
        num_blocks (Sequence[int]): Blocks of each rebuilt group.
        widen_factor (float): Width multiplier of the rebuilt groups
            relative to the backbone's. Defaults to 1.
        in_channels (int, optional): Checked against the tap when given.
        init_cfg (dict | list[dict]): Defaults to the backbone's.
    """

    accepts = ('map', )

    def __init__(self,
                 backbone: nn.Module,
                 tap: Tap,
                 num_blocks: Sequence[int],
                 widen_factor: float = 1.0,
                 in_channels: Optional[int] = None,
                 init_cfg: Union[dict, List[dict]] = CONV_BRANCH_INIT) -> None:
        super().__init__(tap, in_channels, init_cfg)
        if not hasattr(backbone, 'make_group'):
            raise TypeError('WRNStageBranch continues a WideResNet, got '
                            f'{type(backbone).__name__}')
        stages = rebuilt_stages(
            stage_of(tap, 'WRNStageBranch'), num_blocks,
            len(backbone.stage_channels))
        if not (isinstance(widen_factor, (int, float))
                and 0 < widen_factor < math.inf):
            raise ValueError(
                f'branch.widen_factor={widen_factor!r} must be > 0')

        groups = []
        channels = self.in_channels
        for stage, blocks in zip(stages, num_blocks):
            width = int(backbone.stage_channels[stage] * widen_factor)
            if width < 1:
                raise ValueError(
                    f'branch.widen_factor={widen_factor} leaves group '
                    f'{stage} without channels')
            groups.append(
                backbone.make_group(channels, width, blocks,
                                    backbone.strides[stage]))
            channels = width
        self.layers = nn.Sequential(*groups)
        # Pre-activation blocks leave the last one un-normalised.
        self.norm = build_norm_layer(backbone.norm_cfg, channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, in_channels, H, W) group output to the branch's pooled
        feature of shape (N, out_channels)."""
        return self.gap(self.relu(self.norm(self.layers(x)))).flatten(1)
