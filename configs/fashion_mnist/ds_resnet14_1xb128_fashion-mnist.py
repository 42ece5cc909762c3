# Deep supervision only: the DKS model without the synergy term.
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(aux_head=dict(synergy_loss=dict(alpha=0.0)))
