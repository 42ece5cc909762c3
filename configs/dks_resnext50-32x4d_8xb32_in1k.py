# DKS on ResNeXt-50 (32x4d) with ResNet-50's branches, continued with the
# backbone's own blocks: from the ends of stage 1 (layer2: [3, 2] blocks in
# stages 2-3) and stage 2 (layer3: [3] blocks, twice as wide).
_base_ = 'mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(tap='layer2', num_blocks=[3, 2]),
            dict(tap='layer3', num_blocks=[3], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead'))
