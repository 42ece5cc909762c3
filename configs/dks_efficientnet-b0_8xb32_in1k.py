# DKS on EfficientNet-B0: ConvBranch (strided conv-BN-ReLU down to the final
# 1280-channel conv's width) from the ends of the stride-8 (layers.3) and
# stride-16 (layers.4) stages.
_base_ = 'mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='layers.3'), dict(tap='layers.4')]),
    aux_head=dict(type='DKSAuxHead'))
