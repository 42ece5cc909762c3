from typing import Sequence

from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock
from mmpretrain.registry import MODELS


@MODELS.register_module()
class CifarResNet(ResNet_CIFAR):
    """The CIFAR ResNets of He et al. (ResNet-20/32/44/56/110).

    Three stages of ``n`` BasicBlocks at 16, 32 and 64 channels (strides 1,
    2, 2) after a 3x3 stem, ``6n + 2`` layers in all. A subclass of
    MMPretrain's ResNet: ``ResStageBranch`` continues it like any ResNet.
    Downsampling shortcuts are 1x1 projections (MMPretrain's; the paper's
    CIFAR nets zero-pad instead, a few thousand parameters fewer).

    Args:
        depth (int): 20, 32, 44, 56 or 110.
        in_channels (int): Input image channels, e.g. 1 for Fashion-MNIST.
            Defaults to 3.
        out_indices (Sequence[int]): Stages to return; the last one feeds
            the classifier. Defaults to (2, ).
        **kwargs: Other arguments of :class:`ResNet` (``norm_cfg``,
            ``zero_init_residual``, ...).
    """

    arch_settings = {
        depth: (BasicBlock, ((depth - 2) // 6, ) * 3)
        for depth in (20, 32, 44, 56, 110)
    }

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 **kwargs) -> None:
        if depth not in self.arch_settings:
            raise ValueError(f'backbone.depth={depth} is not a CIFAR ResNet '
                             f'depth {sorted(self.arch_settings)}')
        kwargs.setdefault('stem_channels', 16)
        kwargs.setdefault('base_channels', 16)
        super().__init__(
            depth,
            in_channels=in_channels,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            out_indices=out_indices,
            **kwargs)
