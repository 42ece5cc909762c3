# DKS on DenseNet-121: ConvBranch (strided conv-BN-ReLU down to the last
# stage's 1024 channels) from the transitions after stage 0 (stride 8) and
# stage 1 (stride 16).
_base_ = 'mmpretrain::densenet/densenet121_4xb256_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='transitions.0'), dict(tap='transitions.1')]),
    aux_head=dict(type='DKSAuxHead'))
