# DKS on EfficientNet-B0: ConvBranch (strided conv-BN-ReLU down to the final
# 1280-channel conv's width) from the stride-8 (layer 3) and stride-16
# (layer 4) stages; layer 6 is the backbone's own output.
_base_ = 'mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(3, 4, 6)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=3), dict(from_stage=4)]),
    aux_head=dict(type='DKSAuxHead'))
