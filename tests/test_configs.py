"""Every shipped ResNet config builds, trains a step and predicts like the
plain MMPretrain model it extends."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import (CONFIG_DIR, batch, build_model, finite, load_config,
                     mmpretrain_config, num_params)
from mmdks.analysis.benchmark import operators

# The ResNet family of the reference recipe: two branches each. The
# ablations of ResNet-50 differ from ResNet-18's only by the depth they
# inherit (test_ablations_change_one_setting), so ResNet-18's are run.
ABLATIONS = {'ds': ('alpha', 0.0), 'dks-topdown': ('pairs', 'top_down'),
             'dks-bottomup': ('pairs', 'bottom_up')}
IN1K_CONFIGS = sorted(
    [f'dks_resnet{d}_8xb32_in1k.py' for d in (18, 34, 50, 101, 152)] +
    [f'{algo}_resnet18_8xb32_in1k.py' for algo in ABLATIONS])
# MMPretrain's ResNet head scores top-1 and top-5.
LOSS_KEYS = {
    'branch_1/loss', 'branch_2/loss', 'main/loss', 'loss_synergy',
    'branch_1/accuracy_top-1', 'branch_2/accuracy_top-1',
    'main/accuracy_top-1', 'main/accuracy_top-5'
}


@pytest.mark.parametrize('name', IN1K_CONFIGS)
def test_config_builds_trains_and_predicts(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    # A config is the MMPretrain recipe plus the model delta.
    assert cfg.train_cfg.max_epochs == 100 and cfg.optim_wrapper.optimizer.lr \
        == 0.1 and cfg.train_dataloader.dataset.type == 'ImageNet'
    assert cfg.custom_imports.imports == ['mmdks']
    depth = name.split('_')[1][len('resnet'):]
    recipe = Config.fromfile(
        mmpretrain_config(f'resnet/resnet{depth}_8xb32_in1k.py'))
    for part in ('backbone', 'neck', 'head'):  # the plain model's, as is
        assert cfg.model[part] == recipe.model[part], part
    model = build_model(name, num_classes=10)
    inputs, samples = batch()

    model.train()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == LOSS_KEYS
    assert all(finite(value) for value in losses.values())
    if name.startswith('ds_'):
        assert losses['loss_synergy'].item() == 0
    else:
        assert losses['loss_synergy'].item() > 0

    model.eval()
    with torch.no_grad():
        predictions = model(inputs, samples, mode='predict')
        logits = model(inputs, mode='tensor')
    assert logits.shape == (2, 10)
    assert 'branch_scores' not in predictions[0]
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in predictions]),
        logits.softmax(dim=1))


@pytest.mark.parametrize('algo', sorted(ABLATIONS))
@pytest.mark.parametrize('depth', [18, 50])
def test_ablations_change_one_setting(algo, depth):
    def model(name):
        return Config.fromfile(osp.join(CONFIG_DIR, name)).to_dict()['model']

    dks = model(f'dks_resnet{depth}_8xb32_in1k.py')
    ablation = model(f'{algo}_resnet{depth}_8xb32_in1k.py')
    field, value = ABLATIONS[algo]
    assert ablation['aux_head']['synergy_loss'][field] == value
    ablation['aux_head']['synergy_loss'][field] = \
        dks['aux_head']['synergy_loss'][field]
    assert ablation == dks


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_paper_configs_use_the_reference_smoothing(depth):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'dks_resnet{depth}_8xb32_in1k.py'))
    assert cfg.model.aux_head.synergy_loss.eps == 1e-8


@pytest.mark.parametrize('depth', [18, 50, 152])
def test_main_path_equals_the_plain_mmpretrain_model(depth):
    dks = build_model(f'dks_resnet{depth}_8xb32_in1k.py', num_classes=10)
    plain_cfg = Config.fromfile(
        mmpretrain_config(f'resnet/resnet{depth}_8xb32_in1k.py'))
    plain_cfg.model.head.num_classes = 10
    plain = MODELS.build(plain_cfg.model)
    aux = num_params(dks.aux_neck) + num_params(dks.aux_head)
    assert num_params(dks) - aux == num_params(plain)
    plain_shapes = {k: v.shape for k, v in plain.state_dict().items()}
    main_shapes = {
        k: v.shape
        for k, v in dks.state_dict().items()
        if not k.startswith(('aux_neck.', 'aux_head.'))
    }
    assert main_shapes == plain_shapes

    # Same weights, same logits: the branches do not touch the main path.
    plain.load_state_dict(
        {k: v for k, v in dks.state_dict().items() if k in plain_shapes})
    dks.eval(), plain.eval()
    inputs, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            dks(inputs, mode='tensor'), plain(inputs, mode='tensor'),
            rtol=0, atol=0)


def test_reference_branch_table():
    # dks-method.md: ResNet-50 25.6M -> 100.5M parameters (1000 classes).
    model = build_model('dks_resnet50_8xb32_in1k.py')
    assert round(num_params(model) / 1e6, 1) == 100.5
    assert model.aux_neck.out_channels == (2048, 4096)
    branch = model.aux_neck.branches[0]
    assert [len(layer) for layer in branch.layers] == [3, 2]


@pytest.mark.parametrize('depth,blocks', [(18, [[1, 2], [2]]),
                                          (50, [[3, 2], [3]]),
                                          (101, [[12, 2], [3]]),
                                          (152, [[18, 2], [3]])])
def test_bare_branches_get_the_reference_table(depth, blocks):
    cfg = load_config(f'dks_resnet{depth}_8xb32_in1k.py', num_classes=10)
    cfg.model.aux_neck.branches = [dict(from_stage=1), dict(from_stage=2)]
    model = MODELS.build(cfg.model)
    assert [[len(layer) for layer in branch.layers]
            for branch in model.aux_neck.branches] == blocks
    assert [b.tap for b in model.aux_neck.branches] == ['layer2', 'layer3']


def test_eval_branches_scores_every_classifier():
    model = build_model('dks_resnet18_8xb32_in1k.py', num_classes=10)
    model.eval_branches = True
    model.eval()
    inputs, samples = batch()
    with torch.no_grad():
        predictions = model(inputs, samples, mode='predict')
        logits = model.forward_logits(inputs)
    scores = predictions[0].branch_scores
    assert scores.shape == (3, 10)
    torch.testing.assert_close(scores.sum(1), torch.ones(3))
    torch.testing.assert_close(scores[-1], predictions[0].pred_score)
    # predict scores the logits forward_logits returns.
    torch.testing.assert_close(
        torch.stack([p.branch_scores for p in predictions], 1),
        torch.stack(logits).softmax(-1))


def test_zero_init_residual_follows_the_backbone():
    model = build_model('dks_resnet50_8xb32_in1k.py', num_classes=10)
    for branch in model.aux_neck.branches:
        for block in (b for layer in branch.layers for b in layer):
            assert torch.count_nonzero(block.norm3.weight) == 0
            assert torch.count_nonzero(block.conv1.weight) > 0


def test_four_line_config_on_a_custom_dataset(tmp_path):
    # The README's example: DKS ResNet-50 on the user's own class folders.
    cfg_file = tmp_path / 'dks_resnet50_custom.py'
    model_base = osp.join(CONFIG_DIR, '_base_', 'models', 'dks_resnet50.py')
    cfg_file.write_text(
        f"_base_ = ['{model_base}', "
        "'mmpretrain::_base_/datasets/imagenet_bs32.py', "
        "'mmpretrain::_base_/schedules/imagenet_bs256.py', "
        "'mmpretrain::_base_/default_runtime.py']\n"
        "model = dict(head=dict(num_classes=5))\n"
        "data_preprocessor = dict(num_classes=5)\n"
        "train_dataloader = dict(dataset=dict(type='CustomDataset', "
        "data_root='data/flowers', data_prefix='train'))\n")
    cfg = load_config(str(cfg_file))
    model = MODELS.build(cfg.model)
    assert model.aux_head.num_classes == 5
    assert cfg.train_dataloader.dataset.type == 'CustomDataset'
    assert cfg.param_scheduler.milestones == [30, 60, 90]


def test_cal_acc_false_logs_no_accuracy_and_saves_its_operators():
    inputs, samples = batch()
    losses, counts = {}, {}
    for cal_acc in (True, False):
        cfg = load_config('dks_resnet18_8xb32_in1k.py', num_classes=10)
        cfg.model.aux_head.cal_acc = cal_acc
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).train()
        losses[cal_acc] = model(inputs, samples, mode='loss')
        counts[cal_acc] = len(
            operators(lambda: model(inputs, samples, mode='loss')))
    assert set(losses[False]) == {k for k in LOSS_KEYS if 'accuracy' not in k}
    for key, value in losses[False].items():
        torch.testing.assert_close(value, losses[True][key])
    # Top-k accuracy is 7 operators (topk, eq, ...) for each of 3
    # classifiers' top-1 and the main head's top-5.
    assert counts[True] - counts[False] == 7 * 4
