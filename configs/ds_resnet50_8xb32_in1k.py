# Deep supervision without synergy (the paper's "DS"): the same branches,
# cross-entropy only.
_base_ = './dks_resnet50_8xb32_in1k.py'
model = dict(aux_head=dict(synergy_loss=dict(alpha=0.0)))
