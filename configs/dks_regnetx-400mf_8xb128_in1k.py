# DKS on RegNetX-400MF: ConvBranch (strided conv-BN-ReLU down to the last
# stage's 384 channels) from stage 1 (stride 8) and stage 2 (stride 16).
_base_ = 'mmpretrain::regnet/regnetx-400mf_8xb128_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(1, 2, 3)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=1), dict(from_stage=2)]),
    aux_head=dict(type='DKSAuxHead'))
