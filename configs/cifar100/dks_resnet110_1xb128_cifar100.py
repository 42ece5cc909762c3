# DKS on CIFAR ResNet-110 (n = 18): from layer1, [18, 9] blocks; from
# layer2, [18] blocks at twice the last stage's width.
_base_ = './dks_resnet32_1xb128_cifar100.py'

model = dict(
    backbone=dict(depth=110),
    aux_neck=dict(branches=[
        dict(tap='layer1', num_blocks=[18, 9]),
        dict(tap='layer2', num_blocks=[18], widen_factor=2.0),
    ]))
