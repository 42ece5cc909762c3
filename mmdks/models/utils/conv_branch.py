import math
from typing import List, Optional, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.utils import make_divisible
from mmpretrain.registry import MODELS

from .stage_branch import CONV_BRANCH_INIT, BaseBranch
from .taps import Tap


@MODELS.register_module()
class ConvBranch(BaseBranch):
    """An auxiliary branch for any (N, C, H, W) map a backbone computes.

    Strided conv-norm-act blocks take the tapped map to the resolution and
    width of the backbone's output (:attr:`Tap.main_shape`: where the
    backbone pools its output, the resolution of its last stage), then
    global average pooling gives the branch feature. Widths grow
    geometrically from the tap's to ``out_channels``. Where the tap already
    has the output's resolution, one stride-1 block maps the width.

    Channel counts and resolutions come from the probe of the backbone
    (:func:`probe_backbone`), so none has to be typed.

    Args:
        backbone (nn.Module): The built backbone; read, not stored. Its
            ``norm_cfg`` (e.g. SyncBN) is the default norm.
        tap (Tap): The resolved tap, a map.
        in_channels (int, optional): Checked against the tap when given.
        out_channels (int, optional): Width of the last block. Defaults to
            the backbone output's width times ``widen_factor``.
        widen_factor (float): Multiplier of the default ``out_channels``.
            Defaults to 1.
        num_downsamples (int, optional): Stride-2 blocks. Defaults to the
            steps from the tap's resolution to the target's.
        num_blocks (int, optional): Number of blocks, at least
            ``num_downsamples`` and 1. Defaults to that minimum; extra
            blocks have stride 1.
        norm_cfg (dict, optional): Norm layer config. Defaults to the
            backbone's ``norm_cfg``, else BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            Kaiming convs and unit norms.
    """

    accepts = ('map', )

    def __init__(self,
                 backbone: nn.Module,
                 tap: Tap,
                 in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 widen_factor: float = 1.0,
                 num_downsamples: Optional[int] = None,
                 num_blocks: Optional[int] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Union[dict, List[dict]] = CONV_BRANCH_INIT) -> None:
        super().__init__(tap, in_channels, init_cfg)
        target_channels, target_height, _ = tap.main_shape
        if num_downsamples is None:
            if target_height is None:
                raise ValueError(
                    "the backbone's output is no map and it lists no "
                    'stages, so the resolution to reach is unknown: set '
                    f'branch.num_downsamples (stride-2 blocks after '
                    f'{tap.describe()})')
            num_downsamples = max(
                0, round(math.log2(tap.shape[1] / target_height)))
        if num_blocks is None:
            num_blocks = max(num_downsamples, 1)
        if not (isinstance(num_blocks, int)
                and num_blocks >= max(num_downsamples, 1)):
            raise ValueError(
                f'branch.num_blocks={num_blocks!r} is too few for '
                f'{num_downsamples} stride-2 blocks')
        if out_channels is None:
            if not (isinstance(widen_factor, (int, float))
                    and 0 < widen_factor < math.inf):
                raise ValueError(
                    f'branch.widen_factor={widen_factor!r} must be > 0')
            out_channels = int(target_channels * widen_factor)
        if not (isinstance(out_channels, int) and out_channels > 0):
            raise ValueError(
                f'branch.out_channels={out_channels!r} must be a positive '
                'int (a widen_factor this small leaves no channels)')
        if norm_cfg is None:
            norm_cfg = getattr(backbone, 'norm_cfg', None) or dict(type='BN')

        blocks = []
        channels = self.in_channels
        for i in range(num_blocks):
            # Geometric steps from the tap's width to out_channels,
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
        """Map a (N, in_channels, H, W) map to the branch's pooled feature
        of shape (N, out_channels)."""
        return self.gap(self.blocks(x)).flatten(1)
