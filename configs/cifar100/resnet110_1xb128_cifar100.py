# Baseline CIFAR ResNet-110 (3 x 18 BasicBlocks, 16/32/64 channels).
_base_ = './resnet32_1xb128_cifar100.py'
model = dict(backbone=dict(depth=110))
