# DKS on MobileNetV2: ConvBranch (strided conv-BN-ReLU down to the final
# 1280-channel conv's width) from the ends of the stride-8 (layer3) and
# stride-16 (layer5) stages.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='layer3'), dict(tap='layer5')]),
    aux_head=dict(type='DKSAuxHead'))
