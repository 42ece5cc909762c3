# DKS on timm's GhostNet-1.0x: ConvBranch (strided conv-BN-ReLU down to the
# final 1280-channel map) from the ends of the stride-8 and stride-16
# stages, counted in timm's feature_info (conv_stem, blocks.1, blocks.3,
# blocks.5, blocks.7): stages 2 and 3 are timm_model.blocks.3 and .5.
_base_ = './timm/timm-ghostnet-100_8xb32_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(from_stage=2), dict(from_stage=3)]),
    aux_head=dict(type='DKSAuxHead'))
