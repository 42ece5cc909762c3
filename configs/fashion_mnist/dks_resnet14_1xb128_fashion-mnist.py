# DKS on the ResNet-14 baseline, the reference branch design carried over
# (n = 2 blocks a stage): from the end of stage 0 (layer1), [n blocks to 32
# channels, n / 2 to 64]; from the end of stage 1 (layer2), [n blocks at 128
# channels, twice the last width]. Probed at Fashion-MNIST's 28x28.
# Per-branch evaluation is on: every classifier and the ensemble of all of
# them are scored on the test set beside the main accuracy.
_base_ = './resnet14_1xb128_fashion-mnist.py'
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)
model = dict(
    type='DKSClassifier',
    aux_neck=dict(
        type='DKSNeck',
        probe_size=28,
        branches=[
            dict(tap='layer1', num_blocks=[2, 1]),
            dict(tap='layer2', num_blocks=[2], widen_factor=2.0),
        ]),
    aux_head=dict(type='DKSAuxHead'),
    eval_branches=True)
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='BranchAccuracy'),
]
test_evaluator = val_evaluator
