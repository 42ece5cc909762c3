# DKS on CIFAR ResNet-32 (n = 5), the WRN design carried over: from stage 0,
# [n blocks to 32 channels, n // 2 to 64]; from stage 1, [n blocks to 128
# channels] (twice the last stage's width).
_base_ = './resnet32_1xb128_cifar100.py'

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(0, 1, 2)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(from_stage=0, num_blocks=[5, 2]),
            dict(from_stage=1, num_blocks=[5], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead'))
