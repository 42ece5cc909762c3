# DKS ablation: only shallower classifiers teach deeper ones.
_base_ = './dks_resnet18_8xb32_in1k.py'
model = dict(head=dict(synergy_loss=dict(pairs='bottom_up')))
