"""The Fashion-MNIST study configs: same recipe for every method, test-set
evaluation, and a baseline that is MMPretrain alone."""
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import DATASETS, HOOKS, MODELS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, finite, load_study

FASHION = sorted(glob.glob(osp.join(CONFIG_DIR, 'fashion_mnist', '*.py')))
MMDKS_TYPES = ('DKSClassifier', 'DKSNeck', 'DKSAuxHead', 'SynergyLoss',
               'ResStageBranch', 'mmdks')


def test_baseline_ds_and_dks_are_shipped():
    names = {osp.basename(p) for p in FASHION}
    assert {f'{m}resnet14_1xb128_fashion-mnist.py'
            for m in ('', 'ds_', 'dks_')} <= names


@pytest.mark.parametrize('path', FASHION, ids=osp.basename)
def test_evaluates_on_the_test_set(path):
    cfg = Config.fromfile(path)
    # MMPretrain 1.2.0 reads the training files unless test_mode=True.
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.test_mode is True
    assert cfg.train_dataloader.dataset.get('test_mode', False) is False


def test_every_method_shares_the_recipe():
    cfgs = [Config.fromfile(p) for p in FASHION]
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'data_preprocessor'):
        assert all(c[key] == cfgs[0][key] for c in cfgs), key


def test_baseline_is_mmpretrain_only():
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, 'fashion_mnist',
                 'resnet14_1xb128_fashion-mnist.py'))
    assert 'custom_imports' not in cfg
    assert not any(name in cfg.pretty_text for name in MMDKS_TYPES)


@pytest.mark.parametrize('path', FASHION, ids=osp.basename)
def test_one_step_on_grey_28x28(path):
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for hook in cfg.get('custom_hooks', []):  # as the runner would
        HOOKS.build(hook).before_train_iter(
            SimpleNamespace(model=model, iter=500, optim_wrapper=None), 0)
    inputs = torch.randn(4, 1, 28, 28)
    samples = [DataSample().set_gt_label(i) for i in range(4)]
    losses = model(inputs, samples, mode='loss')
    assert all(finite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        assert model(inputs, mode='tensor').shape == (4, 10)


@pytest.mark.skipif(
    not osp.exists(osp.join('data', 'fashion_mnist',
                            't10k-images-idx3-ubyte')),
    reason='Fashion-MNIST not prepared in data/fashion_mnist')
def test_val_set_is_the_10k_test_images():
    cfg = Config.fromfile(FASHION[0])
    assert len(DATASETS.build(cfg.val_dataloader.dataset)) == 10000
    assert len(DATASETS.build(cfg.train_dataloader.dataset)) == 60000


def test_dks_and_ds_score_every_branch():
    for name in ('dks', 'ds'):
        cfg = Config.fromfile(
            osp.join(CONFIG_DIR, 'fashion_mnist',
                     f'{name}_resnet14_1xb128_fashion-mnist.py'))
        assert cfg.model.eval_branches is True
        for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
            assert [m['type'] for m in evaluator] == [
                'Accuracy', 'BranchAccuracy'
            ]


def flat(d, prefix=''):
    """Nested config dict as {dotted.key: leaf}."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flat(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


@pytest.mark.parametrize('name, changed', [
    ('dks-mean', {'aux_head.synergy_loss.reduction': 'mean'}),
    ('dks-warmup', {'aux_head.synergy_loss.warmup_iters': 1000}),
    ('dks-topdown', {'aux_head.synergy_loss.pairs': 'top_down'}),
    ('dks-t3', {'aux_head.synergy_loss.temperature': 3.0}),
    ('dks-smooth', {'aux_head.synergy_loss.eps': 1e-8}),
    ('dks-narrow', {'aux_neck.branches': [
        dict(tap='layer1', num_blocks=[2, 1]),
        dict(tap='layer2', num_blocks=[2], widen_factor=1.0)]}),
])
def test_each_ablation_changes_one_thing_of_dks(name, changed):
    def model(method):
        return flat(Config.fromfile(
            osp.join(CONFIG_DIR, 'fashion_mnist',
                     f'{method}_resnet14_1xb128_fashion-mnist.py')).to_dict()
                    ['model'])

    dks, ablation = model('dks'), model(name)
    diff = {k: v for k, v in ablation.items() if dks.get(k, None) != v}
    assert diff == changed
    assert set(dks) <= set(ablation)


def test_the_study_knows_every_shipped_config():
    shipped = {osp.relpath(p, osp.dirname(CONFIG_DIR)) for p in FASHION}
    assert set(load_study().CONFIGS.values()) == shipped
