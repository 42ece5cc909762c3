# DKS on CIFAR ResNet-32 (n = 5), the reference branch design carried over:
# from layer1, [n blocks to 32 channels, n // 2 to 64]; from layer2,
# [n blocks at 128 channels, twice the last width].
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(
    backbone=dict(
        _delete_=True, type='CifarResNet', depth=32, in_channels=1),
    aux_neck=dict(branches=[
        dict(tap='layer1', num_blocks=[5, 2]),
        dict(tap='layer2', num_blocks=[5], widen_factor=2.0),
    ]))
