# DKS on ShuffleNetV2 1x: ConvBranch (strided conv-BN-ReLU down to the final
# 1024-channel conv's width) from stage 0 (stride 8) and stage 1 (stride 16);
# index 3 is the backbone's own output.
_base_ = 'mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    backbone=dict(out_indices=(0, 1, 3)),
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=0), dict(from_stage=1)]),
    aux_head=dict(type='DKSAuxHead'))
