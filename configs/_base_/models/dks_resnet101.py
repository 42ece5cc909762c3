# DKS on MMPretrain's ResNet-101, the plain model unchanged: branches from
# the ends of stage 1 (layer2: [12, 2] blocks in stages 2-3) and stage 2
# (layer3: [3] blocks, twice the last stage's width), the reference
# design, with the reference code's smoothed KL (eps=1e-8).
_base_ = 'mmpretrain::_base_/models/resnet101.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(tap='layer2', num_blocks=[12, 2]),
            dict(tap='layer3', num_blocks=[3], widen_factor=2.0),
        ]),
    aux_head=dict(
        type='DKSAuxHead',
        synergy_loss=dict(
            type='SynergyLoss',
            alpha=1.0,
            temperature=1.0,
            pairs='dense',
            eps=1e-8)))
