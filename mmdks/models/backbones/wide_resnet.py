from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


class PreActBlock(BaseModule):
    """The pre-activation basic block of Wide ResNets:
    BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3, with a 1x1 projection of the
    pre-activated input where the shape changes.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv.
        drop_rate (float): Dropout between the convs.
        norm_cfg (dict): Norm config.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 drop_rate: float, norm_cfg: dict) -> None:
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.drop = nn.Dropout(drop_rate)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.norm1(x))
        out = self.conv1(pre)
        out = self.conv2(self.drop(self.relu(self.norm2(out))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


@MODELS.register_module()
class WideResNet(BaseModule):
    """Wide ResNet (WRN-d-k) for CIFAR, Zagoruyko & Komodakis 2016.

    A 3x3 stem of 16 channels, then three groups of ``n = (depth - 4) / 6``
    pre-activation blocks of ``16k``, ``32k`` and ``64k`` channels (strides
    1, 2, 2), then BN-ReLU. Group ``i`` is stage ``i`` of ``out_indices``:
    the last group is returned after the final BN-ReLU (what the classifier
    pools), earlier ones as their raw residual stream (what a
    pre-activation branch, :class:`WRNStageBranch`, continues).

    Args:
        depth (int): Layers, ``6n + 4``: 28 for WRN-28-10, 16 for WRN-16-k.
        widen_factor (int): ``k``. Defaults to 10.
        drop_rate (float): Dropout inside each block (0.3 in the paper's
            dropout runs). Defaults to 0.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Groups to return, the classifier's
            last. Defaults to (2, ).
        norm_cfg (dict): Norm config. Defaults to BN.
        init_cfg (dict | list[dict]): Defaults to Kaiming convs (fan-out)
            and unit norms, as the reference code.
    """

    # DKSNeck's branch type when a config names none.
    dks_branch_type = 'WRNStageBranch'

    def __init__(self,
                 depth: int,
                 widen_factor: int = 10,
                 drop_rate: float = 0.0,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Union[dict, List[dict]] = [
                     dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f'backbone.depth={depth} must be 6n + 4 '
                             '(10, 16, 22, 28, 40, ...)')
        self.out_indices = tuple(i + 3 if i < 0 else i for i in out_indices)
        if not all(0 <= i < 3 for i in self.out_indices):
            raise ValueError(f'backbone.out_indices={tuple(out_indices)} '
                             'must name groups 0, 1 or 2')
        self.num_blocks = (depth - 4) // 6
        self.stage_channels = tuple(16 * 2**i * widen_factor for i in range(3))
        self.strides = (1, 2, 2)
        self.drop_rate = drop_rate
        self.norm_cfg = norm_cfg

        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.groups = nn.ModuleList()
        channels = 16
        for width, stride in zip(self.stage_channels, self.strides):
            self.groups.append(
                self.make_group(channels, width, self.num_blocks, stride))
            channels = width
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.relu = nn.ReLU(inplace=True)

    def make_group(self, in_channels: int, out_channels: int,
                   num_blocks: int, stride: int) -> nn.Sequential:
        """``num_blocks`` blocks to ``out_channels``, the first strided:
        the backbone's groups and its branches' are made alike."""
        return nn.Sequential(*[
            PreActBlock(in_channels if i == 0 else out_channels,
                        out_channels, stride if i == 0 else 1,
                        self.drop_rate, self.norm_cfg)
            for i in range(num_blocks)
        ])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the (N, C, H, W) outputs of the groups in ``out_indices``."""
        outs = []
        x = self.stem(x)
        for i, group in enumerate(self.groups):
            x = group(x)
            if i == len(self.groups) - 1:
                x = self.relu(self.norm(x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
