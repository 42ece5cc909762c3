# DKS on MobileNetV3-Small: ConvBranch (strided conv-BN-ReLU down to the
# final 576-channel conv's width) from the ends of the stride-8 (layer3)
# and stride-16 (layer8) stages.
_base_ = 'mmpretrain::mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='layer3'), dict(tap='layer8')]),
    aux_head=dict(type='DKSAuxHead'))
