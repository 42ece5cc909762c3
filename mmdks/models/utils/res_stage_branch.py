import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import constant_init
from mmpretrain.models.backbones import RegNet, ResNet
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from mmpretrain.registry import MODELS

from .stage_branch import (CONV_BRANCH_INIT, BaseBranch, rebuilt_stages,
                           stage_of)
from .taps import Tap


def is_resnet_family(backbone: nn.Module) -> bool:
    """Whether :class:`ResStageBranch` can continue the backbone: a ResNet
    whose ``make_res_layer`` takes ResNet's arguments (RegNet does not)."""
    return isinstance(backbone, ResNet) and not isinstance(backbone, RegNet)


def resnet_stage_channels(backbone: ResNet, stage: int) -> int:
    """Output channels of stage ``stage`` of a ResNet-family backbone."""
    return backbone.base_channels * backbone.expansion * 2**stage


def default_num_blocks(stage_blocks: Sequence[int],
                       from_stage: int) -> List[int]:
    """Blocks of each stage a branch from ``from_stage`` rebuilds, when the
    config gives none: the last stage alone is rebuilt in full; otherwise
    every rebuilt stage gets half its blocks (rounded up) and the last one
    at most two. This is the DKS/DHM reference table for ImageNet ResNets:
    ResNet-18 [1, 2] and [2], ResNet-34/50 [3, 2] and [3], ResNet-101
    [12, 2] and [3], ResNet-152 [18, 2] and [3] (from stages 1 and 2).
    """
    stages = range(from_stage + 1, len(stage_blocks))
    if len(stages) == 1:
        return [stage_blocks[-1]]
    return [math.ceil(stage_blocks[s] / 2)
            for s in stages[:-1]] + [min(2, stage_blocks[-1])]


@MODELS.register_module()
class ResStageBranch(BaseBranch):
    """An auxiliary branch that continues a ResNet-family backbone.

    The branch forks from the end of a stage (``tap='layer2'`` or
    ``from_stage=1``) and rebuilds the remaining stages with the backbone's
    own ``make_res_layer`` (so ResNet, ResNetV1c/V1d, ResNeXt, SEResNet,
    Res2Net and ResNet_CIFAR get their own block type, norm, style and
    ``avg_down``), with its own number of blocks per stage and an optional
    width factor. Each stage downsamples in its first block with the
    backbone's stride, so the branch ends at the resolution of the
    backbone's last stage; global average pooling follows.

    Args:
        backbone (ResNet): The built backbone; read, not stored.
        tap (Tap): The resolved tap, a stage end.
        num_blocks (Sequence[int], optional): Blocks of each rebuilt stage,
            one entry per stage after the tapped one. Defaults to
            :func:`default_num_blocks` of the backbone's depth.
        widen_factor (float): Width multiplier of the rebuilt stages
            relative to the backbone's. Defaults to 1.
        strides (Sequence[int], optional): Strides of the rebuilt stages.
            Defaults to the backbone's strides of those stages.
        with_cp (bool, optional): Gradient checkpointing inside the branch's
            blocks. Defaults to the backbone's ``with_cp``.
        in_channels (int, optional): Checked against the tap when given.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            MMPretrain ResNet's own (Kaiming convs, unit norms), which a
            pretrained backbone's ``init_cfg`` would not give new layers.
    """

    accepts = ('map', )

    def __init__(self,
                 backbone: ResNet,
                 tap: Tap,
                 num_blocks: Optional[Sequence[int]] = None,
                 widen_factor: float = 1.0,
                 strides: Optional[Sequence[int]] = None,
                 with_cp: Optional[bool] = None,
                 in_channels: Optional[int] = None,
                 init_cfg: Union[dict, List[dict]] = CONV_BRANCH_INIT) -> None:
        super().__init__(tap, in_channels, init_cfg)
        if not is_resnet_family(backbone):
            raise TypeError(
                'ResStageBranch continues a ResNet-family backbone, got '
                f'{type(backbone).__name__}; use ConvBranch instead')
        from_stage = stage_of(tap, 'ResStageBranch')
        if num_blocks is None:
            num_blocks = default_num_blocks(backbone.stage_blocks, from_stage)
        stages = rebuilt_stages(from_stage, num_blocks,
                                len(backbone.stage_blocks))
        if strides is None:
            strides = [backbone.strides[i] for i in stages]
        if len(strides) != len(stages):
            raise ValueError(f'branch.strides={strides!r} must have '
                             f'{len(stages)} entries, one per rebuilt stage')
        if not (isinstance(widen_factor, (int, float))
                and 0 < widen_factor < math.inf):
            raise ValueError(
                f'branch.widen_factor={widen_factor!r} must be > 0')

        self.zero_init_residual = backbone.zero_init_residual
        layers = []
        channels = self.in_channels
        for stage, blocks, stride in zip(stages, num_blocks, strides):
            out_channels = int(
                resnet_stage_channels(backbone, stage) * widen_factor)
            if out_channels < 1:
                raise ValueError(
                    f'branch.widen_factor={widen_factor} leaves stage '
                    f'{stage} without channels')
            layers.append(
                backbone.make_res_layer(
                    block=backbone.block,
                    num_blocks=blocks,
                    in_channels=channels,
                    out_channels=out_channels,
                    expansion=backbone.expansion,
                    stride=stride,
                    dilation=backbone.dilations[stage],
                    style=backbone.style,
                    avg_down=backbone.avg_down,
                    with_cp=backbone.with_cp if with_cp is None else with_cp,
                    conv_cfg=backbone.conv_cfg,
                    norm_cfg=backbone.norm_cfg))
            channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_channels = channels

    def init_weights(self) -> None:
        super().init_weights()
        # Follow the backbone: MMPretrain's ResNet zero-initialises the last
        # norm of every residual block.
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    constant_init(m.norm3, 0)
                elif isinstance(m, BasicBlock):
                    constant_init(m.norm2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, in_channels, H, W) stage output to the branch's pooled
        feature of shape (N, out_channels)."""
        return self.gap(self.layers(x)).flatten(1)
