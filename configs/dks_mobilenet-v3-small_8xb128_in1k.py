# DKS on MobileNetV3-Small: ConvBranch (strided conv-BN-ReLU down to the
# final 576-channel conv's width) from the ends of the stride-8 (layer 3)
# and stride-16 (layer 8) stages; layer 12 is the backbone's own output.
_base_ = 'mmpretrain::mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(3, 8, 12)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=3), dict(from_stage=8)]),
    aux_head=dict(type='DKSAuxHead'))
