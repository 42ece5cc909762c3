# Baseline: timm's GhostNet-1.0x through MMPretrain's TIMMBackbone (needs
# `pip install timm`), with MMPretrain's standard ImageNet recipe (batch
# 8 x 32, SGD 0.1, steps at 30/60/90, 100 epochs). The backbone returns
# timm's final 1280-channel map; MMPretrain's neck pools it.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TIMMBackbone', model_name='ghostnet_100'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
