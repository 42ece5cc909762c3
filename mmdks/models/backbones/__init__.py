from .cifar_resnet import CifarResNet
from .dks_convnext import DKSConvNeXt
from .wide_resnet import WideResNet

__all__ = ['CifarResNet', 'DKSConvNeXt', 'WideResNet']
