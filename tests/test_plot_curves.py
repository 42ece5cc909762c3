"""``tools/analysis_tools/plot_dks_curves.py``: losses and per-branch
validation accuracy of a DKS run in one PNG, from MMEngine's scalar log."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

from helpers import (CONFIG_DIR, REPO_ROOT, make_imagenet_folder,
                     run_script)
from mmdks.utils import load_scalars, session_logs
from mmdks.visualization import plot_dks_curves

TOOL = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'plot_dks_curves.py')
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
LOSSES = ['branch_1/loss', 'branch_2/loss', 'main/loss', 'loss_synergy']
VAL = [
    'branch/branch_1_top1', 'branch/branch_2_top1', 'branch/main_top1',
    'branch/ensemble_top1', 'accuracy/top1'
]


def run_tool(*args: str) -> int:
    return run_script(TOOL, *args)


def write_log(work_dir: str, run: str, records: list) -> str:
    path = osp.join(work_dir, run, 'vis_data', 'scalars.json')
    os.makedirs(osp.dirname(path))
    with open(path, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
    return path


def synthetic_records(epochs: int = 3, iters: int = 4) -> list:
    records = []
    for epoch in range(1, epochs + 1):
        for i in range(iters):
            step = (epoch - 1) * iters + i + 1
            records.append({
                'lr': 0.1,
                'loss': 9.0,
                'branch_1/loss': 3 / step,
                'branch_2/loss': 2 / step,
                'main/loss': 1 / step,
                'loss_synergy': 0.5,
                'main/accuracy_top-1': 50.0,
                'epoch': epoch,
                'iter': step,
                'step': step
            })
        records.append({
            'accuracy/top1': 50 + epoch,
            'branch/branch_1_top1': 40 + epoch,
            'branch/branch_2_top1': 45 + epoch,
            'branch/main_top1': 50 + epoch,
            'branch/ensemble_top1': 52 + epoch,
            'step': epoch
        })
    return records


def test_newest_log_and_keys(tmp_path, capsys):
    work_dir = str(tmp_path / 'work')
    old = write_log(work_dir, '20250101_000000', [{'step': 1, 'lr': 1}])
    os.utime(old, (1, 1))
    new = write_log(work_dir, '20250102_000000', synthetic_records())
    assert session_logs(work_dir)[-1] == new
    assert len(load_scalars(new)) == 15

    out = str(tmp_path / 'curves.png')
    assert run_tool(work_dir, '--out', out) == 0
    printed = capsys.readouterr().out
    assert f'read {new}' in printed
    assert f"losses: {', '.join(LOSSES)}" in printed
    assert f"validation: {', '.join(VAL)}" in printed
    with open(out, 'rb') as f:
        assert f.read(8) == PNG_MAGIC


def test_never_overwrites_without_force(tmp_path, capsys):
    work_dir = str(tmp_path / 'work')
    write_log(work_dir, 'run', synthetic_records())
    out = tmp_path / 'curves.png'
    out.write_bytes(b'mine')
    assert run_tool(work_dir, '--out', str(out)) == 1
    assert '--force' in capsys.readouterr().err
    assert out.read_bytes() == b'mine'
    assert run_tool(work_dir, '--out', str(out), '--force') == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert sorted(os.listdir(tmp_path)) == ['curves.png', 'work']


def test_missing_or_unusable_log(tmp_path, capsys):
    out = str(tmp_path / 'curves.png')
    assert run_tool(str(tmp_path), '--out', out) == 1
    assert 'no */vis_data/scalars.json' in capsys.readouterr().err
    assert run_tool(str(tmp_path / 'nowhere'), '--out', out) == 1
    assert 'not a directory' in capsys.readouterr().err

    write_log(str(tmp_path), 'run', [{'lr': 0.1, 'loss': 1.0, 'step': 1}])
    assert run_tool(str(tmp_path), '--out', out) == 1
    assert 'DKS run' in capsys.readouterr().err
    assert run_tool(str(tmp_path), '--out', str(tmp_path / 'c.jpg')) == 1
    assert '.png' in capsys.readouterr().err
    assert not osp.exists(out)


def test_validation_panel_is_optional(tmp_path):
    records = [r for r in synthetic_records() if 'lr' in r]
    plotted = plot_dks_curves(records, str(tmp_path / 'c.png'))
    assert plotted == {'loss': LOSSES, 'val': []}


def test_log_of_a_real_dks_run(tmp_path):
    data = make_imagenet_folder(str(tmp_path / 'data'))
    config = tmp_path / 'dks_eval_branches.py'
    # --cfg-options cannot set a list of metrics, so a small config does.
    config.write_text(
        textwrap.dedent(f"""\
        _base_ = {osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py')!r}
        # 32-pixel crops keep the CPU run to seconds.
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=32),
            dict(type='PackInputs'),
        ]
        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='CenterCrop', crop_size=32),
            dict(type='PackInputs'),
        ]
        train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
        val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
        val_evaluator = [
            dict(type='Accuracy', topk=(1, )),
            dict(type='BranchAccuracy'),
        ]
        default_hooks = dict(checkpoint=None)
        """))
    work_dir = str(tmp_path / 'work')
    options = [
        'model.eval_branches=True', 'train_cfg.max_epochs=2',
        'default_hooks.logger.interval=1'
    ]
    for loader in ('train_dataloader', 'val_dataloader'):
        options += [
            f'{loader}.batch_size=4', f'{loader}.num_workers=0',
            f'{loader}.dataset.data_root={data}'
        ]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    command = [
        sys.executable,
        osp.join(REPO_ROOT, 'tools', 'train.py'),
        str(config), '--work-dir', work_dir, '--cfg-options', *options
    ]
    subprocess.run(command, env=env, check=True, capture_output=True)

    records = load_scalars(session_logs(work_dir)[-1])
    val = [r for r in records if 'branch/main_top1' in r]
    assert [r['step'] for r in val] == [1, 2]
    assert all(r['branch/main_top1'] == r['accuracy/top1'] for r in val)
    out = str(tmp_path / 'curves.png')
    plotted = plot_dks_curves(records, out)
    assert plotted == {'loss': LOSSES, 'val': VAL}
    with open(out, 'rb') as f:
        assert f.read(8) == PNG_MAGIC


def test_logs_of_mmdks_0_1_still_plot(tmp_path):
    # 0.1 logged every classifier's cross-entropy as <name>/loss_ce.
    records = [
        {k.replace('/loss', '/loss_ce'): v for k, v in r.items()}
        for r in synthetic_records()
    ]
    plotted = plot_dks_curves(records, str(tmp_path / 'old.png'))
    assert plotted['loss'] == [
        'branch_1/loss_ce', 'branch_2/loss_ce', 'main/loss_ce', 'loss_synergy'
    ]
    assert plotted['val'] == VAL
