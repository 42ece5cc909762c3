# A deeper baseline: CIFAR ResNet-32 (3 stages x 5 BasicBlocks, 16/32/64
# channels) on 1-channel 28x28 input, same recipe as ResNet-14. MMPretrain's
# ResNet_CIFAR only builds ImageNet depths, so the backbone is mmdks's
# CifarResNet.
_base_ = './resnet14_1xb128_fashion-mnist.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True, type='CifarResNet', depth=32, in_channels=1))
