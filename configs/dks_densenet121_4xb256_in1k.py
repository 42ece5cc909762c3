# DKS on DenseNet-121: ConvBranch (strided conv-BN-ReLU down to the last
# stage's 1024 channels) from the transitions after stage 0 (stride 8) and
# stage 1 (stride 16).
_base_ = 'mmpretrain::densenet/densenet121_4xb256_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(0, 1, 3)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=0), dict(from_stage=1)]),
    aux_head=dict(type='DKSAuxHead'))
