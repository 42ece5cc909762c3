# DKS on WRN-28-10 (n = 4 blocks per group), the reference branch design:
# from the end of group 0 (groups.0), [4 blocks to 320 channels, 2 blocks to
# 640]; from the end of group 1 (groups.1), [4 blocks to 1280 channels]
# (twice the last group's width); the reference code's smoothed KL
# (eps=1e-8). Probed at CIFAR's 32x32.
_base_ = './wrn28-10_1xb128_cifar100.py'

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        probe_size=32,
        branches=[
            dict(tap='groups.0', num_blocks=[4, 2]),
            dict(tap='groups.1', num_blocks=[4], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead', synergy_loss=dict(eps=1e-8)))
