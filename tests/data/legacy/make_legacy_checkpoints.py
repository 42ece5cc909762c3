"""Write the checkpoints of mmdks 0.1 that tests/test_legacy_checkpoints.py
loads with today's code.

mmdks 0.1 (commit c5df216) got its branch inputs by rewriting the
backbone's ``out_indices`` (and, for ConvNeXt, a ``DKSConvNeXt`` backbone),
kept bare ``nn.Linear`` branch classifiers in ``aux_head.fcs`` and counted
the synergy warm-up in a ``trained_iters`` buffer. Run this once, from a
checkout of that commit, to regenerate the files beside it::

    git worktree add /tmp/mmdks-0.1 c5df216
    PYTHONPATH=/tmp/mmdks-0.1 \
        python tests/data/legacy/make_legacy_checkpoints.py

It trains a tiny DKS ResNet for one epoch on 8 generated images (an
MMEngine checkpoint with optimizer state, for resume), builds a tiny
DKSConvNeXt, and saves for both a fixed input and the logits that 0.1's
model gave on it, every classifier's.
"""
import os
import os.path as osp
import subprocess
import sys
import tempfile

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image

HERE = osp.dirname(osp.abspath(__file__))

RESNET = """
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs256.py',
          'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)
model = dict(
    type='DKSClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=4,
                  base_channels=4, out_indices=(1, 2, 3)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=32,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    aux_neck=dict(type='DKSNeck', branches=[
        dict(from_stage=1, num_blocks=[1, 2]),
        dict(from_stage=2, num_blocks=[2], widen_factor=2.0)]),
    aux_head=dict(type='DKSAuxHead',
                  synergy_loss=dict(type='SynergyLoss', warmup_iters=4)))
data_preprocessor = dict(num_classes=2, mean=[127.5] * 3, std=[64.] * 3)
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=32),
            dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='DATA', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
train_cfg = dict(max_epochs=1)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
"""

CONVNEXT = dict(
    type='DKSClassifier',
    backbone=dict(type='DKSConvNeXt', arch=dict(depths=[1, 1, 1, 1],
                  channels=[8, 16, 32, 64]), out_indices=(1, 2, 3)),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64),
    aux_neck=dict(type='DKSNeck', branches=[
        dict(from_stage=1, num_downsamples=2),
        dict(from_stage=2, num_downsamples=1)]),
    aux_head=dict(type='DKSAuxHead'))


def all_logits(model, inputs):
    model.eval()
    with torch.no_grad():
        feats = model.backbone(inputs)
        return torch.stack(model.aux_head(model.aux_neck(feats)) +
                           [model.head(model._main_feats(feats))])


def main():
    import mmdks  # noqa: F401
    from mmpretrain.registry import MODELS
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 32, 32)
    with tempfile.TemporaryDirectory() as tmp:
        for label in range(2):
            os.makedirs(osp.join(tmp, 'data', f'c{label}'))
            for i in range(4):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3),
                                             dtype=np.uint8)).save(
                    osp.join(tmp, 'data', f'c{label}', f'{i}.png'))
        config = osp.join(tmp, 'resnet.py')
        with open(config, 'w') as f:
            f.write(RESNET.replace('DATA', osp.join(tmp, 'data')))
        work = osp.join(tmp, 'work')
        subprocess.run([sys.executable,
                        osp.join(os.environ['PYTHONPATH'], 'tools',
                                 'train.py'), config, '--work-dir', work],
                       check=True)
        checkpoint = torch.load(osp.join(work, 'epoch_1.pth'),
                                weights_only=False)
        torch.save(checkpoint, osp.join(HERE, 'dks_resnet_0.1.pth'))
        model = MODELS.build(Config.fromfile(config).model)
        model.load_state_dict(checkpoint['state_dict'])
        torch.save(dict(inputs=inputs, logits=all_logits(model, inputs)),
                   osp.join(HERE, 'dks_resnet_0.1_logits.pth'))
    model = MODELS.build(CONVNEXT)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()),
               osp.join(HERE, 'dks_convnext_0.1.pth'))
    torch.save(dict(inputs=inputs, logits=all_logits(model, inputs)),
               osp.join(HERE, 'dks_convnext_0.1_logits.pth'))


if __name__ == '__main__':
    main()
