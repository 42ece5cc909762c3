# DKS on RegNetX-400MF: ConvBranch (strided conv-BN-ReLU down to the last
# stage's 384 channels and resolution) from the ends of the stride-8
# (layer2) and stride-16 (layer3) stages.
_base_ = 'mmpretrain::regnet/regnetx-400mf_8xb128_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='layer2'), dict(tap='layer3')]),
    aux_head=dict(type='DKSAuxHead'))
