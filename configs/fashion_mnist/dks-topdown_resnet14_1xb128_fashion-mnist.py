# Ablation: only deeper classifiers teach shallower ones (the main
# classifier is a teacher only), instead of every ordered pair.
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(aux_head=dict(synergy_loss=dict(pairs='top_down')))
