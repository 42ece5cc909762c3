# Ablation: ramp alpha from 0 to 1 over the first 1,000 optimizer steps (8
# epochs of the study's 16k images, a quarter of a 20k x 20 schedule), so
# that classifiers do not learn to match still untrained branches.
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(aux_head=dict(synergy_loss=dict(warmup_iters=1000)))
custom_hooks = [dict(type='SynergyWarmupHook')]
