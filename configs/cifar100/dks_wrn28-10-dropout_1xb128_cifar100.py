# DKS on WRN-28-10 with dropout 0.3; the branches' blocks drop alike.
_base_ = './dks_wrn28-10_1xb128_cifar100.py'
model = dict(backbone=dict(drop_rate=0.3))
