# DKS ablation: only shallower classifiers teach deeper ones.
_base_ = './dks_resnet50_8xb32_in1k.py'
model = dict(aux_head=dict(synergy_loss=dict(pairs='bottom_up')))
