"""The paper's CIFAR networks (CIFAR ResNets, Wide ResNets) and their
CIFAR-100 configs: sizes, the reference recipe and branch design, a DKS
training step and the strip to the plain model."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, num_params
from mmdks.apis import plain_model_config, strip_state_dict
from mmdks.models import DKSClassifier

CIFAR_DIR = osp.join(CONFIG_DIR, 'cifar100')
BASELINES = [
    'resnet32_1xb128_cifar100.py', 'resnet110_1xb128_cifar100.py',
    'wrn28-10_1xb128_cifar100.py', 'wrn28-10-dropout_1xb128_cifar100.py'
]
LOSS_KEYS = {'branch_1/loss', 'branch_2/loss', 'main/loss', 'loss_synergy'}


def load(name: str, **model) -> Config:
    cfg = Config.fromfile(osp.join(CIFAR_DIR, name))
    cfg.merge_from_dict({f'model.{k}': v for k, v in model.items()})
    return cfg


@pytest.mark.parametrize('depth, params', [(20, 0.28), (32, 0.47),
                                           (56, 0.86), (110, 1.74)])
def test_cifar_resnet_sizes(depth, params):
    backbone = MODELS.build(
        dict(type='CifarResNet', depth=depth, out_indices=(0, 1, 2)))
    # 6n + 2 layers: 3n BasicBlocks of two convs, the stem and the classifier.
    assert sum(len(layer) for layer in (backbone.layer1, backbone.layer2,
                                        backbone.layer3)) * 2 + 2 == depth
    head = 64 * 100 + 100
    assert round((num_params(backbone) + head) / 1e6, 2) == params
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 32, 32), (32, 16, 16),
                                                  (64, 8, 8)]


def test_cifar_resnet_rejects_imagenet_depths():
    with pytest.raises(ValueError, match='depth=50'):
        MODELS.build(dict(type='CifarResNet', depth=50))


def test_wide_resnet_sizes():
    # WRN-28-10 of the paper: 36.5M parameters with its CIFAR-100 classifier.
    model = MODELS.build(load('wrn28-10_1xb128_cifar100.py').model)
    assert round(num_params(model) / 1e6, 1) == 36.5
    backbone = MODELS.build(
        dict(type='WideResNet', depth=16, widen_factor=2,
             out_indices=(0, 1, 2)))
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 32, 32), (64, 16, 16),
                                                  (128, 8, 8)]
    with pytest.raises(ValueError, match='depth=27'):
        MODELS.build(dict(type='WideResNet', depth=27))


@pytest.mark.parametrize('name', BASELINES)
def test_configs_follow_the_reference_recipe(name):
    for cfg in (load(name), load(f'dks_{name}')):
        assert cfg.train_dataloader.batch_size == 128
        assert cfg.train_dataloader.dataset.type == 'CIFAR100'
        assert cfg.train_cfg.max_epochs == 200
        optimizer = cfg.optim_wrapper.optimizer
        assert (optimizer.type, optimizer.lr, optimizer.momentum,
                optimizer.weight_decay) == ('SGD', 0.1, 0.9, 5e-4)
        assert (cfg.param_scheduler.type, cfg.param_scheduler.milestones,
                cfg.param_scheduler.gamma) == ('MultiStepLR', [60, 120, 160],
                                               0.2)
        crop, flip = cfg.train_dataloader.dataset.pipeline[:2]
        assert (crop.type, crop.crop_size, crop.padding) == ('RandomCrop', 32,
                                                             4)
        assert flip.type == 'RandomFlip'
        assert cfg.model.head.num_classes == 100
        assert cfg.custom_imports.imports == ['mmdks']
    # The baseline is the DKS model without its auxiliary parts.
    assert plain_model_config(load(f'dks_{name}')).model == load(name).model


@pytest.mark.parametrize('name, blocks, widths', [
    ('dks_resnet32_1xb128_cifar100.py', [[5, 2], [5]], (64, 128)),
    ('dks_resnet110_1xb128_cifar100.py', [[18, 9], [18]], (64, 128)),
    ('dks_wrn28-10_1xb128_cifar100.py', [[4, 2], [4]], (640, 1280)),
])
def test_reference_branch_design(name, blocks, widths):
    model = MODELS.build(load(name).model)
    assert [[len(stage) for stage in branch.layers]
            for branch in model.aux_neck.branches] == blocks
    assert model.aux_neck.out_channels == widths


def test_dropout_reaches_the_branches():
    model = MODELS.build(
        load('dks_wrn28-10-dropout_1xb128_cifar100.py',
             **{'backbone.depth': 10, 'backbone.widen_factor': 1,
                'head.in_channels': 64,
                'aux_neck.branches': [dict(tap='groups.0', num_blocks=[1, 1])]
                }).model)
    drops = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert drops == {0.3}
    assert any(
        isinstance(m, torch.nn.Dropout) for m in model.aux_neck.modules())


# Tiny stand-ins of the shipped DKS configs: WRN-16-2, ResNet-20 on 1-channel
# 28x28 images (the Fashion-MNIST study's input).
TINY = {
    'wrn16-2': ('dks_wrn28-10_1xb128_cifar100.py', 3, 32, {
        'backbone.depth': 16,
        'backbone.widen_factor': 2,
        'head.in_channels': 128,
        'aux_neck.branches': [
            dict(tap='groups.0', num_blocks=[2, 1]),
            dict(tap='groups.1', num_blocks=[2], widen_factor=2.0)
        ],
    }),
    'resnet20-1ch': ('dks_resnet32_1xb128_cifar100.py', 1, 28, {
        'backbone.depth': 20,
        'backbone.in_channels': 1,
        'aux_neck.probe_size': 28,
        'aux_neck.branches': [
            dict(tap='layer1', num_blocks=[3, 1]),
            dict(tap='layer2', num_blocks=[3], widen_factor=2.0)
        ],
    }),
}


@pytest.mark.parametrize('tiny', sorted(TINY))
def test_tiny_dks_trains_predicts_and_strips(tiny):
    name, channels, size, overrides = TINY[tiny]
    cfg = load(name, **overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.manual_seed(0)
    inputs = torch.randn(4, channels, size, size)
    samples = [DataSample().set_gt_label(i) for i in range(4)]

    model.train()
    losses = model(inputs, samples, mode='loss')
    assert LOSS_KEYS <= set(losses)
    for key in LOSS_KEYS:
        assert torch.isfinite(losses[key]).all(), key
    model.parse_losses(losses)[0].backward()

    model.eval()
    with torch.no_grad():
        predictions = model(inputs, samples, mode='predict')
    assert predictions[0].pred_score.shape == (100, )

    kept, _ = strip_state_dict(model.state_dict(),
                               DKSClassifier.auxiliary_modules)
    plain_cfg = plain_model_config(cfg)
    # The CIFAR nets are mmdks's own backbones: their plain model imports
    # mmdks, for the backbone alone.
    assert plain_cfg.custom_imports.imports == ['mmdks']
    assert plain_cfg.model.type == 'ImageClassifier'
    plain = MODELS.build(plain_cfg.model)
    plain.load_state_dict(kept, strict=True)
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            plain(inputs, mode='tensor'),
            model(inputs, mode='tensor'),
            rtol=0,
            atol=0)
