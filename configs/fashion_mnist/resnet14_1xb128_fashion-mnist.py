# Baseline: a CIFAR-style ResNet-14 (3 stages x 2 BasicBlocks, 16/32/64
# channels) on 1-channel 28x28 input, built from MMPretrain's ResNet_CIFAR
# alone, so it and stripped DKS checkpoints run in vanilla MMPretrain.
_base_ = [
    '../_base_/datasets/fashion_mnist_bs128.py',
    '../_base_/schedules/fashion_mnist_cosine.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        num_stages=3,
        in_channels=1,
        stem_channels=16,
        base_channels=16,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=1, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
