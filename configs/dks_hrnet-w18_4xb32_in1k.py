# DKS on HRNet-W18: ConvBranch (strided conv-BN-ReLU down to the stride-32
# output's 144 channels) from the lowest-resolution map of stage 2
# (stage2[1], stride 8) and of stage 3 (stage3[2], stride 16). The main
# path is the recipe's: all four outputs into its HRFuseScales neck.
_base_ = 'mmpretrain::hrnet/hrnet-w18_4xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(tap='stage2', tap_index=1),
            dict(tap='stage3', tap_index=2),
        ]),
    aux_head=dict(type='DKSAuxHead'))
