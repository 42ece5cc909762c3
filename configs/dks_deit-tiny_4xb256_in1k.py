# DKS on DeiT-Tiny: TokenBranch (norm of the class token, as the ViT head
# gets it) after layers 4 and 8; layer 11 feeds the model's own head, which
# gets exactly what it gets in the plain model (out_type='cls_token').
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(3, 7, 11)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=3), dict(from_stage=7)]),
    aux_head=dict(type='DKSAuxHead'))
