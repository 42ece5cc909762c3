# Baseline WRN-28-10 on CIFAR-100 with the DKS reference recipe: batch 128
# on 1 GPU, 200 epochs, SGD lr 0.1 (momentum 0.9, wd 5e-4) x0.2 at epochs
# 60/120/160, pad-4 random crop 32 + flip (MMPretrain's CIFAR-100 pipeline).
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='WideResNet', depth=28, widen_factor=10),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=640,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = dict(batch_size=128)

optim_wrapper = dict(optimizer=dict(weight_decay=5e-4))
param_scheduler = dict(milestones=[60, 120, 160], gamma=0.2)
