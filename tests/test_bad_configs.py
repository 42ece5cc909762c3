"""Bad DKS settings fail when the model is built, with a message that names
the field, never later as a shape error inside a forward pass."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from conftest import CONFIG_DIR

BRANCHES = 'aux_neck.branches'
SYNERGY = 'aux_head.synergy_loss'

# (what is wrong, {dotted key: bad value}, text the error must contain)
CASES = [
    ('unknown pair mode', {f'{SYNERGY}.pairs': 'all'}, 'pairs='),
    ('alpha of the wrong type', {f'{SYNERGY}.alpha': '1'}, 'alpha='),
    ('negative alpha', {f'{SYNERGY}.alpha': -0.5}, 'alpha='),
    ('zero temperature', {f'{SYNERGY}.temperature': 0.0}, 'temperature='),
    ('negative temperature', {f'{SYNERGY}.temperature': -1}, 'temperature='),
    ('negative CE weight', {'aux_head.ce_weights': [1, -1, 1]},
     'ce_weights='),
    ('CE weights of the wrong length', {'aux_head.ce_weights': [1, 1]},
     'ce_weights='),
    ('branch on a stage not in out_indices', {'backbone.out_indices': (2, 3)},
     'from_stage=1'),
    ('branch on the main stage',
     {BRANCHES: [dict(from_stage=3, num_blocks=[1])]}, 'from_stage=3'),
    ('branch on an out-of-range stage',
     {BRANCHES: [dict(from_stage=9, num_blocks=[1])]}, 'from_stage=9'),
    ('branch without from_stage', {BRANCHES: [dict(num_blocks=[1, 2])]},
     'from_stage'),
    ('no branches (K < 2)', {BRANCHES: []}, 'branches'),
    ('branches not a list', {BRANCHES: dict(from_stage=1)}, 'branches'),
    ('num_blocks of the wrong length',
     {BRANCHES: [dict(from_stage=1, num_blocks=[1])]}, 'num_blocks='),
    ('num_blocks of the wrong type',
     {BRANCHES: [dict(from_stage=1, num_blocks='12')]}, 'num_blocks='),
    ('non-positive width', {BRANCHES: [
        dict(from_stage=2, num_blocks=[1], widen_factor=0)]}, 'widen_factor='),
    ('out_indices not increasing', {'backbone.out_indices': (3, 1, 2)},
     'out_indices='),
    ('aux channel mismatch', {'aux_head.in_channels': [256, 1024]},
     'aux_head.in_channels='),
    ('class-count mismatch', {'aux_head.num_classes': 10},
     'aux_head.num_classes='),
    ('non-positive class count', {'head.num_classes': 0}, 'num_classes'),
    ('training top-k beyond the classes', {'aux_head.topk': (1, 1001)},
     'aux_head.topk='),
    ('no training top-k', {'aux_head.topk': ()}, 'aux_head.cal_acc=False'),
]


def build_with(overrides: dict):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dks_resnet18_8xb32_in1k.py'))
    for key, value in overrides.items():  # replace, not merge
        *parents, leaf = f'model.{key}'.split('.')
        node = cfg
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return MODELS.build(cfg.model)


def test_the_unmodified_config_builds():
    assert build_with({}).aux_neck.out_channels == (512, 1024)


@pytest.mark.parametrize('overrides,message',
                         [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_value_fails_at_build_time(overrides, message):
    with pytest.raises((ValueError, TypeError)) as error:
        build_with(overrides)
    assert message in str(error.value)
    # One readable line, not a traceback's worth of shapes.
    assert 'size mismatch' not in str(error.value)
