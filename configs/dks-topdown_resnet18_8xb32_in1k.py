# DKS ablation: only deeper classifiers teach shallower ones.
_base_ = './dks_resnet18_8xb32_in1k.py'
model = dict(aux_head=dict(synergy_loss=dict(pairs='top_down')))
