# DKS on WRN-28-10 (n = 4 blocks per group), the reference branch design:
# from group 0, [4 blocks to 320 channels, 2 blocks to 640]; from group 1,
# [4 blocks to 1280 channels] (twice the last group's width).
_base_ = './wrn28-10_1xb128_cifar100.py'

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(0, 1, 2)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(from_stage=0, num_blocks=[4, 2]),
            dict(from_stage=1, num_blocks=[4], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead'))
