"""Runs logged with MMEngine's TensorboardVisBackend: read back as the JSON
scalar log's records, and plotted by plot_dks_curves.py."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.visualization import Visualizer

from helpers import REPO_ROOT
from mmdks.utils import (load_event_scalars, load_run_scalars, load_scalars,
                         session_logs)
from mmdks.utils.scalar_log import EVENTS
from test_plot_curves import LOSSES, VAL, run_tool, synthetic_records
from test_reliability import write_small_config

pytest.importorskip('tensorboard')


def log_records(save_dir: str, records: list, backends: list) -> None:
    """Log ``records`` as MMEngine's LoggerHook does, to ``backends``."""
    visualizer = Visualizer(
        name=save_dir,
        vis_backends=[dict(type=b) for b in backends],
        save_dir=save_dir)
    for record in records:
        scalars = {k: v for k, v in record.items() if k != 'step'}
        visualizer.add_scalars(scalars, step=record['step'])
    visualizer.close()


def test_events_read_as_the_json_log(tmp_path):
    run_dir = str(tmp_path / '20250101_000000')
    log_records(run_dir, synthetic_records(),
                ['LocalVisBackend', 'TensorboardVisBackend'])
    from_json = load_scalars(session_logs(str(tmp_path))[-1])
    from_events = load_event_scalars(
        session_logs(str(tmp_path), EVENTS)[-1])
    assert len(from_events) == len(from_json) == 15
    for event, line in zip(from_events, from_json):
        assert event == pytest.approx(line, rel=1e-6)  # float32 values


def test_plot_tool_reads_a_tensorboard_only_run(tmp_path, capsys):
    log_records(str(tmp_path / 'work' / '20250101_000000'),
                synthetic_records(), ['TensorboardVisBackend'])
    out = str(tmp_path / 'curves.png')
    assert run_tool(str(tmp_path / 'work'), '--out', out) == 0
    printed = capsys.readouterr().out
    assert 'vis_data/events.out.tfevents.' in printed
    assert f"losses: {', '.join(LOSSES)}" in printed
    assert f"validation: {', '.join(VAL)}" in printed
    assert osp.isfile(out)


def test_no_log_at_all_names_both(tmp_path, capsys):
    assert run_tool(str(tmp_path), '--out', str(tmp_path / 'c.png')) == 1
    err = capsys.readouterr().err
    assert 'scalars.json' in err and 'events.out.tfevents.*' in err


def test_without_tensorboard_it_says_what_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split('.')[0] == 'tensorboard']:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, 'tensorboard', None)
    with pytest.raises(ImportError, match='pip install tensorboard'):
        load_event_scalars(str(tmp_path / 'events.out.tfevents.1'))


def test_a_run_configured_for_tensorboard(imagenet_folder, tmp_path):
    config = write_small_config(tmp_path / 'cfg.py', imagenet_folder, 1)
    with open(config, 'a') as f:
        f.write("visualizer = dict(vis_backends=[dict(type="
                "'TensorboardVisBackend')])\n")
    work_dir = str(tmp_path / 'work')
    subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), config,
         '--work-dir', work_dir],
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1'),
        check=True, capture_output=True, timeout=600)
    logs, records = load_run_scalars(work_dir)
    assert len(logs) == 1 and 'events.out.tfevents.' in logs[0]
    # Two iterations (8 images, batch 4), then the validation of epoch 1.
    assert [r['step'] for r in records] == [1, 2, 1]
    assert set(LOSSES) <= set(records[0])
    assert 'accuracy/top1' in records[2]
