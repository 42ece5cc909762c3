# DKS on ResNetV1d-50 with ResNet-50's branches: from stage 1 ([3, 2] blocks
# in stages 2-3) and stage 2 ([3] blocks, twice as wide).
_base_ = 'mmpretrain::resnet/resnetv1d50_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(1, 2, 3)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(from_stage=1, num_blocks=[3, 2]),
            dict(from_stage=2, num_blocks=[3], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead'))
