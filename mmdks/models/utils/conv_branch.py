from typing import List, Optional, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmpretrain.models.utils import make_divisible
from mmpretrain.registry import MODELS

from .backbone_probe import num_halvings, probe_branch_shapes, \
    resolve_in_channels
from .stage_branch import CONV_BRANCH_INIT


@MODELS.register_module()
class ConvBranch(BaseModule):
    """An auxiliary branch for any backbone with (N, C, H, W) stage outputs.

    Strided conv-norm-act blocks take the stage output of ``from_stage`` to
    the resolution and width of the backbone's main (last) stage, then
    global average pooling gives the branch feature. Widths grow
    geometrically from the stage's to ``out_channels``. Where the stage
    already has the main stage's resolution, one stride-1 block maps the
    width.

    Channel counts and resolutions are read off a one-off dummy forward of
    the backbone (:func:`probe_out_shapes`), so none has to be typed.

    Args:
        backbone (nn.Module): The built backbone; read, not stored. It must
            have ``out_indices`` with ``from_stage`` before the last entry.
        from_stage (int): Index of the backbone stage the branch forks from.
        in_channels (int, optional): Channels of that stage; checked against
            the backbone when given.
        out_channels (int, optional): Width of the last block. Defaults to
            the main stage's width times ``widen_factor``.
        widen_factor (float): Multiplier of the default ``out_channels``.
            Defaults to 1.
        num_downsamples (int, optional): Stride-2 blocks. Defaults to the
            steps from the stage's resolution to the main stage's; needed
            where the main stage's output is pooled (e.g. ConvNeXt's).
        num_blocks (int, optional): Number of blocks, at least
            ``num_downsamples`` and 1. Defaults to that minimum; extra
            blocks have stride 1.
        norm_cfg (dict): Norm layer config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            Kaiming convs and unit norms.
    """

    def __init__(self,
                 backbone: nn.Module,
                 from_stage: int,
                 in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 widen_factor: float = 1.0,
                 num_downsamples: Optional[int] = None,
                 num_blocks: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Union[dict, List[dict]] = CONV_BRANCH_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        in_shape, main_shape = probe_branch_shapes(backbone, from_stage)
        if len(in_shape) != 3:
            raise ValueError(
                f'ConvBranch needs (C, H, W) maps, but backbone stage '
                f'{from_stage} outputs {in_shape}; use TokenBranch for '
                'token/vector outputs')
        if num_downsamples is None:
            if len(main_shape) != 3:
                raise ValueError(
                    f'the main stage outputs pooled {main_shape} vectors, so '
                    'the resolution to reach is unknown: set '
                    'branch.num_downsamples (stride-2 blocks from stage '
                    f'{from_stage} to the last stage)')
            num_downsamples = num_halvings(in_shape, main_shape)
        if num_blocks is None:
            num_blocks = max(num_downsamples, 1)
        if num_blocks < max(num_downsamples, 1):
            raise ValueError(
                f'branch.num_blocks={num_blocks} is too few for '
                f'{num_downsamples} stride-2 blocks')
        self.from_stage = from_stage
        self.in_channels = resolve_in_channels(in_channels, in_shape[0],
                                               from_stage)
        if out_channels is None:
            out_channels = int(main_shape[0] * widen_factor)

        blocks = []
        channels = self.in_channels
        for i in range(num_blocks):
            # Geometric steps from the stage's width to out_channels,
            # intermediate widths rounded to multiples of 8.
            width = out_channels if i == num_blocks - 1 else make_divisible(
                self.in_channels *
                (out_channels / self.in_channels)**((i + 1) / num_blocks), 8)
            blocks.append(
                ConvModule(
                    channels,
                    width,
                    kernel_size=3,
                    stride=2 if i < num_downsamples else 1,
                    padding=1,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, in_channels, H, W) stage output to the branch's pooled
        feature of shape (N, out_channels)."""
        return self.gap(self.blocks(x)).flatten(1)
