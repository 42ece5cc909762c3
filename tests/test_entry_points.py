"""The installed package through mim, the way users run it.

These tests need mmdks installed with ``pip install .`` (the README's
install, ``make install``): mim finds configs and tools only in the
installed package's ``.mim`` folder.
"""
import glob
import importlib.metadata
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import RunsCode

CONFIG = 'dks_resnet18_8xb32_in1k.py'


def run(cmd, cwd, timeout=600):
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, \
        f'{" ".join(cmd)} failed:\n{result.stdout[-3000:]}\n' \
        f'{result.stderr[-3000:]}'
    return result


def data_options(data_root: str, max_epochs: int) -> list:
    options = [
        f'train_cfg.max_epochs={max_epochs}',
        'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
        'test_dataloader.batch_size=4'
    ]
    for split in ('train', 'val', 'test'):
        options += [f'{split}_dataloader.dataset.data_root={data_root}',
                    f'{split}_dataloader.num_workers=0']
    return ['--cfg-options'] + options


@pytest.fixture(scope='module')
def installed_root(tmp_path_factory) -> str:
    out = run([
        sys.executable, '-c', 'import mmdks, os; '
        'print(os.path.dirname(mmdks.__file__))'
    ], cwd=str(tmp_path_factory.mktemp('elsewhere')))
    root = out.stdout.strip()
    assert 'site-packages' in root, \
        f'mmdks is imported from {root}: install it with `pip install .`'
    return root


def test_installed_package_ships_configs_and_tools(installed_root):
    mim = osp.join(installed_root, '.mim')
    for name in ('configs/dks_resnet152_8xb32_in1k.py',
                 'configs/_base_/models/dks_resnet152.py', 'tools/train.py',
                 'tools/test.py', 'tools/dist_train.sh',
                 'tools/slurm_train.sh'):
        assert osp.isfile(osp.join(mim, name)), name


def scalars(work_dir: str) -> list:
    logs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert logs, f'no scalars.json under {work_dir}'
    records = []
    for log in logs:
        with open(log) as f:
            records += [json.loads(line) for line in f]
    return records


def test_mim_train_resume_and_test(installed_root, imagenet_folder,
                                   tmp_path):
    # Run from an unrelated folder: mim must find the config in mmdks.
    work_dir = str(tmp_path / 'work')
    run(['mim', 'train', 'mmdks', CONFIG, '--gpus', '0', '--work-dir',
         work_dir, '--auto-scale-lr'] + data_options(imagenet_folder, 1),
        cwd=str(tmp_path))
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    train_logs = [r for r in scalars(work_dir) if 'loss_synergy' in r]
    assert train_logs, 'the synergy term is not in the training log'
    for key in ('branch_1/loss', 'branch_2/loss', 'main/loss',
                'branch_1/accuracy_top-1', 'main/accuracy_top-1'):
        assert key in train_logs[0], key
    # auto-scale-lr: base batch 256, actual 4 on one process.
    assert train_logs[0]['lr'] == pytest.approx(0.1 * 4 / 256)

    out = run(['mim', 'train', 'mmdks', CONFIG, '--gpus', '0', '--work-dir',
               work_dir, '--resume'] + data_options(imagenet_folder, 2),
              cwd=str(tmp_path))
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))

    out = run(['mim', 'test', 'mmdks', CONFIG, '--gpus', '0', '--checkpoint',
               osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
               str(tmp_path / 'test')] + data_options(imagenet_folder, 2),
              cwd=str(tmp_path))
    assert 'accuracy/top1' in out.stdout + out.stderr


def test_mim_test_refuses_code_in_a_url_checkpoint(
        installed_root, imagenet_folder, http_root, tmp_path):
    served, url = http_root
    marker = str(tmp_path / 'code_ran')
    torch.save({'state_dict': {}, 'meta': RunsCode(marker)},
               osp.join(served, 'mim_evil.pth'))
    checkpoint = f'{url}/mim_evil.pth'
    result = subprocess.run(
        ['mim', 'test', 'mmdks', CONFIG, '--gpus', '0', '--checkpoint',
         checkpoint, '--work-dir', str(tmp_path / 'test')] +
        data_options(imagenet_folder, 1),
        cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert f'error: refusing {checkpoint}: ' in result.stderr
    assert not osp.exists(marker)


def test_mim_run_finds_the_installed_tools(installed_root, tmp_path):
    # mim's own --help intercepts `mim run PKG CMD --help` for packages
    # outside its list, so run the tool for real on a missing config.
    result = subprocess.run(
        ['mim', 'run', 'mmdks', 'strip_heads', 'missing.py', 'missing.pth',
         str(tmp_path / 'out')],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert '.mim/tools/strip_heads.py' in result.stderr
    assert 'error: ' in result.stderr and 'missing.py' in result.stderr
    assert not (tmp_path / 'out').exists()


def test_the_model_zoo_is_installed(installed_root, tmp_path):
    out = run(['mim', 'search', 'mmdks', '--valid-config'],
              cwd=str(tmp_path)).stdout
    assert "'dks_resnet50_8xb32_in1k'" in out
    assert "'dks_wrn28-10_1xb128_cifar100'" in out
    out = run([
        sys.executable, '-c', 'import mmdks, mmpretrain; '
        "print(len(mmpretrain.list_models('dks*'))); "
        "print(type(mmpretrain.get_model('dks_resnet50_8xb32_in1k')))"
    ], cwd=str(tmp_path)).stdout.split()
    assert int(out[0]) > 20
    assert out[-1] == "'mmdks.models.classifiers.dks_classifier." \
        "DKSClassifier'>"


def test_the_wheel_carries_the_licence(installed_root):
    metadata = importlib.metadata.metadata('mmdks')
    assert metadata['License'] == 'Apache License 2.0'
    assert metadata['License-File'] == 'LICENSE'
    licence = [f for f in importlib.metadata.files('mmdks')
               if f.name == 'LICENSE']
    assert licence and 'Apache License' in licence[0].read_text()
