# Ablation on the deeper network: synergy averaged over its pairs.
_base_ = './dks_resnet32_1xb128_fashion-mnist.py'
model = dict(aux_head=dict(synergy_loss=dict(reduction='mean')))
