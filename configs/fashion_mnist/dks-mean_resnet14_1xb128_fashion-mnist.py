# Ablation: average the synergy term over its K(K-1) pairs instead of
# summing them (the reference), so its pull on the shared backbone does not
# grow with the number of classifiers.
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(aux_head=dict(synergy_loss=dict(reduction='mean')))
