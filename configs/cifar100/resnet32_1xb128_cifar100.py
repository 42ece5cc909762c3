# Baseline CIFAR ResNet-32 (3 x 5 BasicBlocks, 16/32/64 channels) on
# CIFAR-100, trained with the WRN recipe of the DKS reference code.
_base_ = './wrn28-10_1xb128_cifar100.py'

model = dict(
    backbone=dict(_delete_=True, type='CifarResNet', depth=32),
    head=dict(in_channels=64))
