# DKS on ConvNeXt-Tiny: ConvBranch (strided conv-BN-ReLU down to the last
# stage's 768 channels and its stride 32, where ConvNeXt pools) from the
# ends of the stride-8 (stages.1) and stride-16 (stages.2) stages. The
# backbone is the plain recipe's: its one norm stays on the last stage.
_base_ = 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)

model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        branches=[dict(tap='stages.1'), dict(tap='stages.2')]),
    aux_head=dict(type='DKSAuxHead'))
