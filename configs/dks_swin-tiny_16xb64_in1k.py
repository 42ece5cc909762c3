# DKS on Swin-T: TokenBranch (one transformer encoder layer of the stage's
# width, the mean token, LN) on the tokens of the stride-8 (stages.1) and
# stride-16 (stages.2) stages. A Swin stage returns (tokens, (H, W)):
# tap_index picks the tokens. The backbone is the plain recipe's, with its
# one norm on the last stage.
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(tap='stages.1', tap_index=0, num_layers=1),
            dict(tap='stages.2', tap_index=0, num_layers=1),
        ]),
    aux_head=dict(type='DKSAuxHead'))
