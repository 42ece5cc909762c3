# DKS on CIFAR ResNet-32 (n = 5), the WRN design carried over: from the end
# of stage 0 (layer1), [n blocks to 32 channels, n // 2 to 64]; from the end
# of stage 1 (layer2), [n blocks to 128 channels] (twice the last stage's
# width); the reference code's smoothed KL (eps=1e-8). Probed at CIFAR's
# 32x32.
_base_ = './resnet32_1xb128_cifar100.py'

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        probe_size=32,
        branches=[
            dict(tap='layer1', num_blocks=[5, 2]),
            dict(tap='layer2', num_blocks=[5], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead', synergy_loss=dict(eps=1e-8)))
