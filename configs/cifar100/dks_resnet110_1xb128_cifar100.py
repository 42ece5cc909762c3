# DKS on CIFAR ResNet-110 (n = 18): from stage 0, [18, 9] blocks; from
# stage 1, [18] blocks at twice the last stage's width.
_base_ = './dks_resnet32_1xb128_cifar100.py'

model = dict(
    backbone=dict(depth=110),
    aux_neck=dict(branches=[
        dict(from_stage=0, num_blocks=[18, 9]),
        dict(from_stage=1, num_blocks=[18], widen_factor=2.0),
    ]))
