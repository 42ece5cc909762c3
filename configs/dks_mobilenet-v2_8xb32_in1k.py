# DKS on MobileNetV2: ConvBranch (strided conv-BN-ReLU down to the final
# 1280-channel conv's width) from the ends of the stride-8 (layer 2) and
# stride-16 (layer 4) stages; layer 7 is the backbone's own output.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(2, 4, 7)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=2), dict(from_stage=4)]),
    aux_head=dict(type='DKSAuxHead'))
