from typing import List, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from .stage_branch import CONV_BRANCH_INIT, rebuilt_stages


@MODELS.register_module()
class WRNStageBranch(BaseModule):
    """An auxiliary branch that continues a :class:`WideResNet`.

    The reference DKS design: the branch rebuilds the groups after
    ``from_stage`` with the backbone's own pre-activation blocks
    (``make_group``: same dropout and norm), its own block counts and an
    optional width factor, then BN-ReLU and global average pooling. For
    WRN-28-10 (n = 4): from group 0, ``num_blocks=[4, 2]``; from group 1,
    ``num_blocks=[4], widen_factor=2`` (1280 channels).

    Args:
        backbone (WideResNet): The built backbone; read, not stored.
        from_stage (int): The group the branch forks from (0 or 1).
        num_blocks (Sequence[int]): Blocks of each rebuilt group.
        widen_factor (float): Width multiplier of the rebuilt groups
            relative to the backbone's. Defaults to 1.
        init_cfg (dict | list[dict]): Defaults to the backbone's.
    """

    def __init__(self,
                 backbone: nn.Module,
                 from_stage: int,
                 num_blocks: Sequence[int],
                 widen_factor: float = 1.0,
                 init_cfg: Union[dict, List[dict]] = CONV_BRANCH_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if not hasattr(backbone, 'make_group'):
            raise TypeError('WRNStageBranch continues a WideResNet, got '
                            f'{type(backbone).__name__}')
        num_stages = len(backbone.stage_channels)
        stages = rebuilt_stages(from_stage, num_blocks, num_stages)
        if not widen_factor > 0:
            raise ValueError(
                f'branch.widen_factor={widen_factor} must be > 0')

        self.from_stage = from_stage
        self.in_channels = backbone.stage_channels[from_stage]
        groups = []
        channels = self.in_channels
        for stage, blocks in zip(stages, num_blocks):
            width = int(backbone.stage_channels[stage] * widen_factor)
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
