"""tools/test.py takes the options of MMPretrain's test tool."""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, REPO_ROOT
from mmdks.utils import set_tta, set_visualization

TEST = [sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py')]


@pytest.fixture(scope='module')
def dks_checkpoint(imagenet_folder, tmp_path_factory):
    """A small DKS config (CIFAR ResNet-32 on the tiny 8-image set at 32x32)
    and an untrained checkpoint of it."""
    root = tmp_path_factory.mktemp('test_tool')
    base = osp.join(CONFIG_DIR, 'cifar100', 'dks_resnet32_1xb128_cifar100.py')
    pipeline = ("[dict(type='LoadImageFromFile'), "
                "dict(type='Resize', scale=32), dict(type='PackInputs')]")
    config = root / 'cfg.py'
    config.write_text(
        f"_base_ = '{base}'\n"
        'test_dataloader = dict(batch_size=4, num_workers=0, '
        'persistent_workers=False, dataset=dict(_delete_=True, '
        f"type='ImageNet', data_root='{imagenet_folder}', split='val', "
        f'pipeline={pipeline}))\n'
        "test_evaluator = dict(type='Accuracy', topk=(1, ))\n")
    model = MODELS.build(Config.fromfile(str(config)).model)
    checkpoint = str(root / 'dks.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return str(config), checkpoint


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        TEST + list(args),
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=600)


def run_test(config: str, checkpoint: str, work_dir: str, *options):
    result = run_tool(config, checkpoint, '--work-dir', work_dir, *options)
    assert result.returncode == 0, result.stderr[-3000:]
    # The runner writes the config it ran next to the logs.
    return Config.fromfile(osp.join(work_dir, 'cfg.py'))


def test_out_show_dir_interval_and_no_pin_memory(dks_checkpoint, tmp_path):
    work_dir, vis = str(tmp_path / 'work'), str(tmp_path / 'vis')
    (tmp_path / 'preds.pkl').write_text('an earlier run')
    ran = run_test(*dks_checkpoint, work_dir, '--out',
                   str(tmp_path / 'preds.pkl'), '--force', '--show-dir', vis,
                   '--interval', '2', '--no-pin-memory')
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 8 and 'pred_score' in predictions[0]
    assert ran.test_dataloader.pin_memory is False
    assert len(os.listdir(vis)) == 4  # every second of the 8 images


def test_out_item_metrics_with_tta_and_amp(dks_checkpoint, tmp_path):
    work_dir = str(tmp_path / 'work')
    ran = run_test(*dks_checkpoint, work_dir, '--out',
                   str(tmp_path / 'metrics.json'), '--out-item', 'metrics',
                   '--tta', '--amp')
    with open(tmp_path / 'metrics.json') as f:
        assert 0 <= json.load(f)['accuracy/top1'] <= 100
    assert ran.model.type == 'mmpretrain.AverageClsScoreTTA'
    assert ran.model.module.type == 'DKSClassifier'
    assert ran.test_cfg.fp16 is True  # bfloat16 autocast on this CPU


def test_out_item_needs_out(dks_checkpoint):
    result = run_tool(*dks_checkpoint, '--out-item', 'metrics')
    assert result.returncode == 2
    assert '--out-item needs --out FILE' in result.stderr


def test_an_existing_out_is_kept_unless_forced(dks_checkpoint, tmp_path):
    out = tmp_path / 'preds.pkl'
    out.write_text('mine')
    result = run_tool(*dks_checkpoint, '--out', str(out))
    assert result.returncode == 2 and '--force' in result.stderr
    assert out.read_text() == 'mine'
    result = run_tool(*dks_checkpoint, '--out', str(tmp_path / 'preds.txt'))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith('error: ')
    assert 'Traceback' not in result.stderr


def test_show_turns_on_the_visualization_hook(dks_checkpoint):
    # A window needs a display; what --show sets up is checked instead.
    cfg = Config.fromfile(dks_checkpoint[0])
    set_visualization(cfg, show=True, interval=3, wait_time=0.5)
    hook = cfg.default_hooks.visualization
    assert hook.type == 'VisualizationHook'
    assert (hook.enable, hook.show, hook.out_dir, hook.interval,
            hook.wait_time) == (True, True, None, 3, 0.5)
    del cfg.default_hooks['visualization']
    with pytest.raises(ValueError, match='default_hooks.visualization'):
        set_visualization(cfg, show_dir='vis')


def test_tta_uses_the_configs_own_pipeline(dks_checkpoint):
    cfg = Config.fromfile(dks_checkpoint[0])
    cfg.tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='X')]
    set_tta(cfg)
    assert cfg.test_dataloader.dataset.pipeline[-1] == dict(type='X')
    assert cfg.model.module.type == 'DKSClassifier'
