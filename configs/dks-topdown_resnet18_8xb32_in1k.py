# DKS ablation: only deeper classifiers teach shallower ones.
_base_ = './dks_resnet18_8xb32_in1k.py'
model = dict(head=dict(synergy_loss=dict(pairs='top_down')))
