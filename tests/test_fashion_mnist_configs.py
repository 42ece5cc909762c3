"""The Fashion-MNIST study configs: same recipe for every method, test-set
evaluation, and a baseline that is MMPretrain alone."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401
from conftest import CONFIG_DIR

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
    model = MODELS.build(Config.fromfile(path).model)
    model.init_weights()
    inputs = torch.randn(4, 1, 28, 28)
    samples = [DataSample().set_gt_label(i) for i in range(4)]
    losses = model(inputs, samples, mode='loss')
    assert all(torch.isfinite(v).all() for v in losses.values())
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
