"""Bad DKS settings fail when the model is built, with one line that names
the field and the fix, never later as a shape error inside a forward pass."""
import pytest

import mmdks  # noqa: F401
from helpers import build_model, load_config, set_key

BRANCHES = 'aux_neck.branches'
SYNERGY = 'aux_head.synergy_loss'
INF = float('inf')

# (what is wrong, {dotted key: bad value}, text the error must contain)
CASES = [
    ('unknown pair mode', {f'{SYNERGY}.pairs': 'all'}, 'pairs='),
    ('alpha of the wrong type', {f'{SYNERGY}.alpha': '1'}, 'alpha='),
    ('negative alpha', {f'{SYNERGY}.alpha': -0.5}, 'alpha='),
    ('infinite alpha', {f'{SYNERGY}.alpha': INF}, 'alpha='),
    ('zero temperature', {f'{SYNERGY}.temperature': 0.0}, 'temperature='),
    ('infinite temperature', {f'{SYNERGY}.temperature': INF},
     'temperature='),
    ('negative eps', {f'{SYNERGY}.eps': -1e-8}, 'eps='),
    ('eps that swamps the distributions', {f'{SYNERGY}.eps': 0.1},
     'must be a number in [0, 0.0001]'),
    ('negative CE weight', {'aux_head.ce_weights': [1, -1, 1]},
     'ce_weights='),
    ('infinite CE weight', {'aux_head.ce_weights': [1, INF, 1]},
     'ce_weights='),
    ('CE weights of the wrong length', {'aux_head.ce_weights': [1, 1]},
     'ce_weights='),
    ('unknown tap', {BRANCHES: [dict(tap='layer9')]},
     "branches[0].tap='layer9' is not a module of ResNet (nearest: layer4"),
    ('tap on the main output', {BRANCHES: [dict(tap='layer4')]},
     "tap 'layer4' is at or after the module that produces the backbone's "
     'output'),
    ('tap that shares the main output', {BRANCHES: [dict(tap='layer4.1')]},
     'at or after'),
    ('tap changed in place later', {BRANCHES: [dict(tap='layer2.1.bn2')]},
     'changed in place after it returns'),
    ('tap and from_stage', {BRANCHES: [dict(tap='layer2', from_stage=1)]},
     'exactly one of tap'),
    ('neither tap nor from_stage', {BRANCHES: [dict(num_blocks=[1, 2])]},
     'exactly one of tap'),
    ('out-of-range stage', {BRANCHES: [dict(from_stage=9)]},
     'from_stage=9 must be a stage index in 0..3'),
    ('tuple index on a tensor', {BRANCHES: [dict(tap='layer2',
                                                 tap_index=0)]},
     'drop tap_index'),
    ('layout of a map that is not one', {BRANCHES: [dict(
        tap='layer2', layout='NLC')]}, "layout='NLC' must be one of"),
    ('branch type that takes tokens', {BRANCHES: [dict(
        tap='layer2', type='TokenBranch')]},
     "TokenBranch takes tokens or vector, but tap 'layer2' (map"),
    ('unknown branch type', {BRANCHES: [dict(tap='layer2', type='Nope')]},
     "branches[0].type='Nope' is not a registered branch type"),
    ('continuing the last stage', {BRANCHES: [dict(
        tap='layer1.0', type='ResStageBranch')]}, 'is not a stage end'),
    ('no branches (K < 2)', {BRANCHES: []}, 'branches'),
    ('branches not a list', {BRANCHES: dict(from_stage=1)}, 'branches'),
    ('aux_neck missing', {'aux_neck': None}, 'model.aux_neck=None'),
    ('num_blocks of the wrong length',
     {BRANCHES: [dict(from_stage=1, num_blocks=[1])]}, 'num_blocks='),
    ('num_blocks of the wrong type',
     {BRANCHES: [dict(from_stage=1, num_blocks='12')]}, 'num_blocks='),
    ('non-positive width', {BRANCHES: [
        dict(from_stage=2, num_blocks=[1], widen_factor=0)]}, 'widen_factor='),
    ('width that leaves no channels', {BRANCHES: [
        dict(from_stage=2, widen_factor=0.001)]}, 'widen_factor=0.001'),
    ('typed branch channels that differ', {BRANCHES: [
        dict(from_stage=1, in_channels=100)]},
     'in_channels=100 does not match'),
    ('aux channel mismatch', {'aux_head.in_channels': [256, 1024]},
     'aux_head.in_channels='),
    ('class-count mismatch', {'aux_head.num_classes': 10},
     'aux_head.num_classes='),
    ('head channels that do not fit the backbone', {'head.in_channels': 100},
     'model.head (LinearClsHead) does not take the features [(512,)]'),
    ('non-positive class count', {'head.num_classes': 0}, 'num_classes'),
    ('training top-k beyond the classes', {'aux_head.topk': (1, 1001)},
     'aux_head.topk='),
    ('no training top-k', {'aux_head.topk': ()}, 'aux_head.cal_acc=False'),
    ('a probe size the backbone cannot take',
     {'aux_neck.probe_size': 0}, 'probe_size=0'),
    ('distilled LeViT head', {'head': dict(type='LeViTClsHead',
                                           num_classes=10, in_channels=512)},
     'set model.head.distillation=False'),
    ('multi-label head', {'head': dict(type='MultiLabelLinearClsHead',
                                       num_classes=10, in_channels=512)},
     'is multi-label'),
    ('head that is no classification head',
     {'head': dict(type='LatentPredictHead', loss=dict(
         type='CosineSimilarityLoss'), predictor=dict(
             type='NonLinearNeck', in_channels=512, hid_channels=8,
             out_channels=8))},
     'is not a single-label classification head'),
]


def build_with(overrides: dict):
    cfg = load_config('dks_resnet18_8xb32_in1k.py')
    for key, value in overrides.items():
        set_key(cfg, f'model.{key}', value)
    return build_model(cfg)


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
    assert '\n' not in str(error.value)
    assert 'size mismatch' not in str(error.value)


def test_distillation_head_fails_with_mmpretrain_s_reason():
    # MMPretrain cannot train the distilled DeiT head itself.
    cfg = load_config('dks_deit-tiny_4xb256_in1k.py')
    cfg.model.backbone.type = 'DistilledVisionTransformer'
    cfg.model.backbone.img_size = 32
    cfg.model.head.type = 'DeiTClsHead'
    with pytest.raises(ValueError,
                       match=r'model.head \(DeiTClsHead\): MMPretrain cannot '
                       'train the distilled DeiT head'):
        build_model(cfg)
