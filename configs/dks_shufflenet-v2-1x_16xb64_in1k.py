# DKS on ShuffleNetV2 1x: ConvBranch (strided conv-BN-ReLU down to the final
# 1024-channel conv's width) from the ends of the stride-8 (layers.0) and
# stride-16 (layers.1) stages.
_base_ = 'mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='layers.0'), dict(tap='layers.1')]),
    aux_head=dict(type='DKSAuxHead'))
