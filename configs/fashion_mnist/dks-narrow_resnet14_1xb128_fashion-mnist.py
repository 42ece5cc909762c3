# Ablation: branch width. Both branches at the backbone's own stage widths
# (widen_factor 1) instead of the reference's doubled stage-2 branch.
_base_ = './dks_resnet14_1xb128_fashion-mnist.py'
model = dict(
    aux_neck=dict(branches=[
        dict(tap='layer1', num_blocks=[2, 1]),
        dict(tap='layer2', num_blocks=[2], widen_factor=1.0),
    ]))
