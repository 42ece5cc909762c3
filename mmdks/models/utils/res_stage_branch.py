from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule, constant_init
from mmpretrain.models.backbones import RegNet, ResNet
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from mmpretrain.registry import MODELS

from .stage_branch import CONV_BRANCH_INIT, rebuilt_stages


def is_resnet_family(backbone: nn.Module) -> bool:
    """Whether :class:`ResStageBranch` can continue the backbone: a ResNet
    whose ``make_res_layer`` takes ResNet's arguments (RegNet does not)."""
    return isinstance(backbone, ResNet) and not isinstance(backbone, RegNet)


def resnet_stage_channels(backbone: ResNet, stage: int) -> int:
    """Output channels of stage ``stage`` of a ResNet-family backbone."""
    return backbone.base_channels * backbone.expansion * 2**stage


@MODELS.register_module()
class ResStageBranch(BaseModule):
    """An auxiliary branch that continues a ResNet-family backbone.

    The branch forks from the output of stage ``from_stage`` and rebuilds the
    remaining stages with the backbone's own ``make_res_layer`` (so ResNet,
    ResNetV1c/V1d, ResNeXt, SEResNet and ResNet_CIFAR get their own block
    type, norm, style and ``avg_down``), with its own number of blocks per
    stage and an optional width factor. Each stage downsamples in its first
    block with the backbone's stride, so the branch ends at the resolution
    of the backbone's last stage; global average pooling follows.

    Args:
        backbone (ResNet): The built backbone; read, not stored.
        from_stage (int): Index of the backbone stage the branch forks from.
        num_blocks (Sequence[int]): Blocks of each rebuilt stage, one entry
            per stage after ``from_stage``.
        widen_factor (float): Width multiplier of the rebuilt stages
            relative to the backbone's. Defaults to 1.
        strides (Sequence[int], optional): Strides of the rebuilt stages.
            Defaults to the backbone's strides of those stages.
        with_cp (bool, optional): Gradient checkpointing inside the branch's
            blocks. Defaults to the backbone's ``with_cp``.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            MMPretrain ResNet's own (Kaiming convs, unit norms), which a
            pretrained backbone's ``init_cfg`` would not give new layers.
    """

    def __init__(self,
                 backbone: ResNet,
                 from_stage: int,
                 num_blocks: Sequence[int],
                 widen_factor: float = 1.0,
                 strides: Optional[Sequence[int]] = None,
                 with_cp: Optional[bool] = None,
                 init_cfg: Union[dict, List[dict]] = CONV_BRANCH_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if not is_resnet_family(backbone):
            raise TypeError(
                'ResStageBranch continues a ResNet-family backbone, got '
                f'{type(backbone).__name__}; use ConvBranch instead')
        num_stages = len(backbone.stage_blocks)
        stages = rebuilt_stages(from_stage, num_blocks, num_stages)
        if strides is None:
            strides = [backbone.strides[i] for i in stages]
        if len(strides) != len(stages):
            raise ValueError(f'branch.strides={strides!r} must have '
                             f'{len(stages)} entries, one per rebuilt stage')
        if not widen_factor > 0:
            raise ValueError(
                f'branch.widen_factor={widen_factor} must be > 0')

        self.from_stage = from_stage
        self.in_channels = resnet_stage_channels(backbone, from_stage)
        self.zero_init_residual = backbone.zero_init_residual
        layers = []
        in_channels = self.in_channels
        for stage, blocks, stride in zip(stages, num_blocks, strides):
            out_channels = int(
                resnet_stage_channels(backbone, stage) * widen_factor)
            layers.append(
                backbone.make_res_layer(
                    block=backbone.block,
                    num_blocks=blocks,
                    in_channels=in_channels,
                    out_channels=out_channels,
                    expansion=backbone.expansion,
                    stride=stride,
                    dilation=backbone.dilations[stage],
                    style=backbone.style,
                    avg_down=backbone.avg_down,
                    with_cp=backbone.with_cp if with_cp is None else with_cp,
                    conv_cfg=backbone.conv_cfg,
                    norm_cfg=backbone.norm_cfg))
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.out_channels = in_channels

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
