"""The benchmark's measurements mean what they say (no timings asserted)."""
import os.path as osp

import torch
from mmengine.config import Config

from conftest import CONFIG_DIR
from mmdks.analysis import benchmark as bench

CONFIG = osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py')


def test_variants_and_activation_memory():
    cfg = Config.fromfile(CONFIG)
    models = {v: bench.build(cfg, v, 'cpu') for v in bench.VARIANTS}
    assert models['ds'].aux_head.synergy_loss.alpha == 0
    assert not hasattr(models['baseline'], 'aux_neck')
    inputs, samples = bench.fake_batch(2, 32, 3, 1000, 'cpu')
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
    inputs, _ = bench.fake_batch(2, 32, 3, 1000, 'cpu')
    with torch.no_grad():
        assert torch.equal(deployed(inputs), dks(inputs, mode='tensor'))
    baseline = bench.build(cfg, 'baseline', 'cpu')
    assert bench.flops_and_params(deployed, inputs, False) == \
        bench.flops_and_params(baseline, inputs, False)
    train = bench.flops_and_params(dks, inputs, True)
    assert train['flops'] > 1.5 * bench.flops_and_params(
        baseline, inputs, False)['flops']


def test_loop_synergy_is_the_same_quantity():
    logits = torch.randn(4, 8, 10)
    torch.testing.assert_close(
        bench.loop_synergy(logits), bench.SynergyLoss()(logits),
        rtol=1e-5, atol=1e-5)
