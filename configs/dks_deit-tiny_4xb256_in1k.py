# DKS on DeiT-Tiny: TokenBranch (the normed class token of all tokens) after
# layers.3 and layers.7; the model's own head gets exactly what it gets in
# the plain model (the final class token).
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='layers.3'), dict(tap='layers.7')]),
    aux_head=dict(type='DKSAuxHead'))
