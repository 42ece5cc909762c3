"""Checkpoints trained with mmdks 0.1's configs keep working with today's.

0.1 rewrote the backbone's ``out_indices`` (and used a ``DKSConvNeXt``
backbone), kept its branch classifiers as ``aux_head.fcs.<k>`` and a
``trained_iters`` buffer in the synergy loss. The files in tests/data/legacy
were written by that code (make_legacy_checkpoints.py says how), with the
logits it computed. Today's configs of the same models are the plain
recipe's backbone plus taps.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import REPO_ROOT, make_imagenet_folder
from mmdks.apis import check_checkpoint_fits, strip_checkpoint

LEGACY = osp.join(REPO_ROOT, 'tests', 'data', 'legacy')

RESNET = """
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs256.py',
          'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)
model = dict(
    type='DKSClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=4,
                  base_channels=4),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=32),
    aux_neck=dict(type='DKSNeck', probe_size=32, branches=[
        dict(tap='layer2', num_blocks=[1, 2]),
        dict(tap='layer3', num_blocks=[2], widen_factor=2.0)]),
    aux_head=dict(type='DKSAuxHead',
                  synergy_loss=dict(type='SynergyLoss', warmup_iters=4)))
custom_hooks = [dict(type='SynergyWarmupHook')]
data_preprocessor = dict(num_classes=2, mean=[127.5] * 3, std=[64.] * 3)
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=32),
            dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='DATA',
                 ann_file='meta/train.txt', data_prefix='train',
                 pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
train_cfg = dict(max_epochs=2)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
default_hooks = dict(logger=dict(interval=1))
"""

CONVNEXT = """
custom_imports = dict(imports=['mmdks'], allow_failed_imports=False)
model = dict(
    type='DKSClassifier',
    backbone=dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1],
                  channels=[8, 16, 32, 64])),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64),
    aux_neck=dict(type='DKSNeck', probe_size=32, branches=[
        dict(tap='stages.1'), dict(tap='stages.2')]),
    aux_head=dict(type='DKSAuxHead'))
"""


@pytest.fixture
def configs(tmp_path):
    data = make_imagenet_folder(str(tmp_path / 'data'))
    paths = {}
    for name, text in (('resnet', RESNET), ('convnext', CONVNEXT)):
        paths[name] = str(tmp_path / f'dks_{name}.py')
        with open(paths[name], 'w') as f:
            f.write(text.replace('DATA', data))
    return paths


def legacy(name: str):
    checkpoint = osp.join(LEGACY, f'dks_{name}_0.1.pth')
    reference = torch.load(osp.join(LEGACY, f'dks_{name}_0.1_logits.pth'),
                           weights_only=True)
    return checkpoint, reference


@pytest.mark.parametrize('name', ['resnet', 'convnext'])
def test_old_weights_give_the_old_logits(configs, name):
    checkpoint, reference = legacy(name)
    model = MODELS.build(Config.fromfile(configs[name]).model)
    check_checkpoint_fits(model, checkpoint)
    state = torch.load(checkpoint, weights_only=False)['state_dict']
    assert 'aux_head.fcs.0.weight' in state  # written by 0.1
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        logits = torch.stack(model.forward_logits(reference['inputs']))
    torch.testing.assert_close(logits, reference['logits'], rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize('name', ['resnet', 'convnext'])
def test_old_checkpoints_strip(configs, name, tmp_path):
    checkpoint, reference = legacy(name)
    summary = strip_checkpoint(configs[name], checkpoint,
                               str(tmp_path / 'deploy'))
    assert summary['aux_mismatch'] == []
    plain = MODELS.build(
        Config.fromfile(summary['outputs']['config']).model).eval()
    assert plain.backbone.__class__.__name__ == \
        {'resnet': 'ResNet', 'convnext': 'ConvNeXt'}[name]
    plain.load_state_dict(
        torch.load(summary['outputs']['checkpoint'],
                   weights_only=True)['state_dict'], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(
            plain(reference['inputs'], mode='tensor'),
            reference['logits'][-1], rtol=1e-6, atol=1e-6)


def test_old_optimizer_state_lines_up_with_the_parameters(configs):
    checkpoint, _ = legacy('resnet')
    model = MODELS.build(Config.fromfile(configs['resnet']).model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer.load_state_dict(
        torch.load(checkpoint, weights_only=False)['optimizer'])
    params = list(model.parameters())
    assert len(optimizer.state) == len(params)
    for param in params:
        assert optimizer.state[param]['momentum_buffer'].shape == param.shape


@pytest.mark.parametrize('how', ['--resume', 'load_from'])
def test_old_checkpoints_resume_and_load_from(configs, how, tmp_path):
    checkpoint, _ = legacy('resnet')
    options = ['--resume', checkpoint] if how == '--resume' else \
        ['--cfg-options', f'load_from={checkpoint}']
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'),
         configs['resnet'], '--work-dir', str(tmp_path / 'work')] + options,
        capture_output=True, text=True, cwd=str(tmp_path),
        env={'PYTHONPATH': REPO_ROOT, 'PATH': '/usr/bin:/bin'})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert osp.isfile(str(tmp_path / 'work' / 'epoch_2.pth'))
    if how == '--resume':
        assert 'resumed epoch: 1' in out
        # Epoch 1 is not trained again.
        assert 'Epoch(train) [1]' not in out
    else:
        assert 'Load checkpoint from' in out
