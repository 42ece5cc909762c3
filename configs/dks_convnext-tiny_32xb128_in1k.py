# DKS on ConvNeXt-Tiny: ConvBranch (strided conv-BN-ReLU down to the last
# stage's 768 channels) from stage 1 (stride 8, two stride-2 blocks) and
# stage 2 (stride 16, one); ConvNeXt pools its output, so the branches are
# told how far down stride 32 is.
# DKSConvNeXt is MMPretrain's ConvNeXt except that its branch stages return
# raw maps without a norm of their own, so the weights stay ConvNeXt's.
_base_ = 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(type='DKSConvNeXt', out_indices=(1, 2, 3)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[
            dict(from_stage=1, num_downsamples=2),
            dict(from_stage=2, num_downsamples=1),
        ]),
    aux_head=dict(type='DKSAuxHead'))
