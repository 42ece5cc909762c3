# DKS on CIFAR ResNet-32 (n = 5), the reference branch design carried over:
# from stage 0, [n blocks to 32 channels, n // 2 to 64]; from stage 1,
# [n blocks at 128 channels, twice the last width].
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='CifarResNet',
        depth=32,
        in_channels=1,
        out_indices=(0, 1, 2)),
    aux_neck=dict(branches=[
        dict(from_stage=0, num_blocks=[5, 2]),
        dict(from_stage=1, num_blocks=[5], widen_factor=2.0),
    ]))
