"""The benchmark's measurements mean what they say (no timings asserted)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from helpers import CONFIG_DIR, REPO_ROOT
from mmdks.analysis import benchmark as bench

CONFIG = osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py')
TOOL = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_dks.py')


def test_variants_and_activation_memory():
    cfg = Config.fromfile(CONFIG)
    models = {v: bench.build(cfg, v, 'cpu') for v in bench.VARIANTS}
    assert models['ds'].aux_head.synergy_loss.alpha == 0
    assert not hasattr(models['baseline'], 'aux_neck')
    inputs, samples = bench.fake_batch(cfg, 2, 32, 'cpu')
    memory = {
        v: bench.activation_memory_mb(m, inputs, samples)
        for v, m in models.items()
    }
    # Branches add saved activations; checkpointing them gives most back.
    assert memory['baseline'] < memory['dks_cp'] < memory['dks']
    assert abs(memory['ds'] - memory['dks']) < 0.05 * memory['dks']


def test_stripped_model_equals_dks_main_path_and_flops_match_baseline():
    cfg = Config.fromfile(CONFIG)
    dks = bench.build(cfg, 'dks', 'cpu').eval()
    deployed = bench.stripped(cfg, dks, 'cpu')
    inputs, _ = bench.fake_batch(cfg, 2, 32, 'cpu')
    with torch.no_grad():
        assert torch.equal(deployed(inputs), dks(inputs, mode='tensor'))
    baseline = bench.build(cfg, 'baseline', 'cpu')
    assert bench.flops_and_params(deployed, inputs, False) == \
        bench.flops_and_params(baseline, inputs, False)
    train = bench.flops_and_params(dks, inputs, True)
    assert train['flops'] > 1.5 * bench.flops_and_params(
        baseline, inputs, False)['flops']


def test_dks_runs_only_the_loss_more_operators_than_ds():
    cfg = Config.fromfile(CONFIG)
    inputs, samples = bench.fake_batch(cfg, 2, 32, 'cpu')
    ops = {
        v: len(bench.operators(bench.forward_backward_fn(
            bench.build(cfg, v, 'cpu'), inputs, samples)))
        for v in ('dks', 'ds')
    }
    loss = len(bench.operators(bench.synergy_loss_fn(
        bench.build(cfg, 'dks', 'cpu'), inputs)))
    # Beyond the loss, DKS only adds its gradient to the 3 classifiers'.
    assert ops['ds'] < ops['dks'] <= ops['ds'] + loss + 3


def run_tool(out, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, TOOL, CONFIG, '--batch-size', '2', '--input-size',
         '32', '--blocks', '2', '--block-steps', '1', '--out', str(out)] +
        list(args),
        env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True,
        text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_an_existing_report_is_kept_unless_forced(tmp_path):
    (tmp_path / 'r18.md').write_text('mine')
    result = subprocess.run(
        [sys.executable, TOOL, CONFIG, '--out', str(tmp_path / 'r18.json')],
        env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 2 and '--force' in result.stderr
    assert os.listdir(tmp_path) == ['r18.md']
    assert (tmp_path / 'r18.md').read_text() == 'mine'


def test_tool_with_overrides_writes_json_and_markdown(tmp_path):
    out = tmp_path / 'r18.json'
    (tmp_path / 'r18.md').write_text('an older report')
    report = run_tool(out, '--cfg-options', 'model.head.num_classes=10',
                      '--force')
    assert set(report['steps']) == set(bench.VARIANTS) | {'loss'}
    for times in report['steps'].values():
        assert len(times['wall_blocks']) == 2 and times['gpu_s'] is None
    assert report['operators']['baseline'] < report['operators']['dks']
    assert {'dks/ds', 'loss/dks', 'stripped/baseline', 'loop/ours (K4)'} <= \
        set(report['ratios'])
    assert len(report['targets']) == 9
    assert all(t['verdict'] in ('met', 'missed', 'unresolved')
               for t in report['targets'].values())
    assert report['compile_loss'] is False
    # The overrides reach the models: a 10-class head.
    assert report['cfg_options'] == {'model.head.num_classes': 10}
    assert report['complexity']['baseline']['params'] == \
        11_689_512 - 990 * 513
    text = (tmp_path / 'r18.md').read_text()
    assert 'synergy loss / dks' in text


@pytest.mark.slow
def test_tool_times_the_compiled_step_with_the_eager_losses(tmp_path):
    report = run_tool(tmp_path / 'r18.json', '--variants', 'dks',
                      '--compile-step', 'default', '--compile-loss')
    assert report['compile_loss'] is True
    assert 'synergy loss compiled' in (tmp_path / 'r18.md').read_text()
    assert set(report['steps']) == {'dks', 'loss', 'dks_compile-default'}
    assert 'dks_compile-default/dks' in report['ratios']
    target = report['targets'][
        'dks_compile-default: losses within 0.0001 of eager']
    assert target['verdict'] == 'met', target
