"""DKS on MMPretrain backbones beyond ResNet: every shipped config builds,
trains a step and predicts, its main path is the plain MMPretrain model of
the recipe it inherits, and it strips to that model."""
import ast
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401
from conftest import CONFIG_DIR, mmpretrain_config
from mmdks.apis import plain_model_config, strip_state_dict
from mmdks.models import DKSClassifier
from mmdks.models.utils import probe_out_shapes

NUM_CLASSES = 10
SIZE = 32
# Shipped config -> (the MMPretrain recipe it inherits, the branch type
# DKSNeck picks for it).
CONFIGS = {
    'dks_resnext50-32x4d_8xb32_in1k.py':
    ('resnext/resnext50-32x4d_8xb32_in1k.py', 'ResStageBranch'),
    'dks_resnetv1d50_8xb32_in1k.py':
    ('resnet/resnetv1d50_8xb32_in1k.py', 'ResStageBranch'),
    'dks_seresnet50_8xb32_in1k.py':
    ('seresnet/seresnet50_8xb32_in1k.py', 'ResStageBranch'),
    'dks_regnetx-400mf_8xb128_in1k.py':
    ('regnet/regnetx-400mf_8xb128_in1k.py', 'ConvBranch'),
    'dks_mobilenet-v2_8xb32_in1k.py':
    ('mobilenet_v2/mobilenet-v2_8xb32_in1k.py', 'ConvBranch'),
    'dks_mobilenet-v3-small_8xb128_in1k.py':
    ('mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py', 'ConvBranch'),
    'dks_shufflenet-v2-1x_16xb64_in1k.py':
    ('shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py', 'ConvBranch'),
    'dks_efficientnet-b0_8xb32_in1k.py':
    ('efficientnet/efficientnet-b0_8xb32_in1k.py', 'ConvBranch'),
    'dks_convnext-tiny_32xb128_in1k.py':
    ('convnext/convnext-tiny_32xb128_in1k.py', 'ConvBranch'),
    'dks_densenet121_4xb256_in1k.py':
    ('densenet/densenet121_4xb256_in1k.py', 'ConvBranch'),
    'dks_deit-tiny_4xb256_in1k.py':
    ('deit/deit-tiny_4xb256_in1k.py', 'TokenBranch'),
}
LOSS_KEYS = {
    'branch_1/loss_ce', 'branch_2/loss_ce', 'main/loss_ce', 'loss_synergy'
}


def shrink(cfg: Config) -> Config:
    """10 classes and 32x32 images (DeiT's position embedding too)."""
    cfg.model.head.num_classes = NUM_CLASSES
    if cfg.model.backbone.type == 'VisionTransformer':
        cfg.model.backbone.img_size = SIZE
    # What the runner does with a top-level data_preprocessor.
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    cfg.model.data_preprocessor.num_classes = NUM_CLASSES
    return cfg


def load(name: str) -> Config:
    return shrink(Config.fromfile(osp.join(CONFIG_DIR, name)))


def base_of(name: str) -> str:
    """The ``_base_`` a config file names."""
    with open(osp.join(CONFIG_DIR, name)) as f:
        tree = ast.parse(f.read())
    return next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == '_base_')


def batch(model: torch.nn.Module, training: bool) -> dict:
    """Two random 32x32 images through the model's data preprocessor
    (which applies the recipe's Mixup/CutMix when training)."""
    torch.manual_seed(0)
    data = dict(
        inputs=[
            torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8)
            for _ in range(2)
        ],
        data_samples=[DataSample().set_gt_label(i) for i in range(2)])
    return model.data_preprocessor(data, training)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_trains_and_predicts(name):
    recipe, branch_type = CONFIGS[name]
    # The MMPretrain recipe of that model plus the DKS delta.
    assert base_of(name) == f'mmpretrain::{recipe}'
    assert name == f'dks_{osp.basename(recipe)}'
    cfg = load(name)
    assert cfg.custom_imports.imports == ['mmdks']
    model = MODELS.build(cfg.model)
    model.aux_neck.init_weights()  # the backbone's own init is MMPretrain's
    assert [type(b).__name__ for b in model.aux_neck.branches] == \
        [branch_type] * 2

    model.train()
    losses = model(**batch(model, training=True), mode='loss')
    assert LOSS_KEYS <= set(losses)
    for key, value in losses.items():
        assert torch.isfinite(value).all(), key

    model.eval()
    with torch.no_grad():
        predictions = model(**batch(model, training=False), mode='predict')
    assert len(predictions) == 2
    assert predictions[0].pred_score.shape == (NUM_CLASSES, )


@pytest.mark.parametrize('name', [
    'dks_mobilenet-v3-small_8xb128_in1k.py', 'dks_deit-tiny_4xb256_in1k.py'
])
def test_gradients_reach_every_branch(name):
    # One cheap config per new branch type (backward is the slow part).
    model = MODELS.build(load(name).model)
    model.train()
    losses = model(**batch(model, training=True), mode='loss')
    model.parse_losses(losses)[0].backward()
    for i, branch in enumerate(model.aux_neck.branches):
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in branch.parameters()), f'branch {i} has no grad'


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_main_path_is_the_plain_model(name):
    cfg = load(name)
    dks = MODELS.build(cfg.model)

    # Weight for weight the plain model of the inherited recipe...
    plain_recipe = shrink(Config.fromfile(mmpretrain_config(CONFIGS[name][0])))
    expected = {
        k: v.shape
        for k, v in MODELS.build(plain_recipe.model).state_dict().items()
    }
    main = {
        k: v.shape
        for k, v in dks.state_dict().items()
        if not k.startswith(('aux_neck.', 'aux_head.'))
    }
    assert main == expected

    # ...so the stripped weights load strictly into the plain config's model
    # (DKSConvNeXt's is ConvNeXt) and give the DKS model's logits.
    kept, dropped = strip_state_dict(dks.state_dict(),
                                     DKSClassifier.auxiliary_modules)
    assert dropped
    plain = MODELS.build(plain_model_config(cfg).model)
    plain.load_state_dict(kept, strict=True)
    dks.eval(), plain.eval()
    inputs = batch(dks, training=False)['inputs']
    with torch.no_grad():
        torch.testing.assert_close(
            plain(inputs, mode='tensor'),
            dks(inputs, mode='tensor'),
            rtol=0,
            atol=0)


def build_regnet(branches: list) -> torch.nn.Module:
    cfg = load('dks_regnetx-400mf_8xb128_in1k.py')
    cfg.model.aux_neck.branches = branches
    return MODELS.build(cfg.model)


def test_typed_channels_are_checked():
    model = build_regnet([dict(from_stage=1, in_channels=64)])
    assert model.aux_neck.branches[0].in_channels == 64
    with pytest.raises(ValueError, match=r'branches\[0\].*in_channels=100 '
                       r'does not match backbone stage 1, which outputs 64 '
                       'channels'):
        build_regnet([dict(from_stage=1, in_channels=100)])


@pytest.mark.parametrize('branch, message', [
    (dict(from_stage=0), 'from_stage=0'),
    (dict(from_stage=1, num_downsamples=2, num_blocks=1), 'num_blocks=1'),
    (dict(type='ResStageBranch', from_stage=1, num_blocks=[1, 1]),
     'use ConvBranch'),
    (dict(type='TokenBranch', from_stage=1), 'use ConvBranch'),
])
def test_bad_branches_fail_at_build(branch, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build_regnet([branch])


def test_convnext_branches_need_the_stride_to_the_pooled_output():
    cfg = load('dks_convnext-tiny_32xb128_in1k.py')
    cfg.model.aux_neck.branches = [dict(from_stage=1)]
    with pytest.raises(ValueError, match='set branch.num_downsamples'):
        MODELS.build(cfg.model)


def test_cls_token_branches_cannot_attend():
    cfg = load('dks_deit-tiny_4xb256_in1k.py')
    cfg.model.aux_neck.branches = [dict(from_stage=3, num_layers=1)]
    with pytest.raises(ValueError, match="out_type='raw'"):
        MODELS.build(cfg.model)


def test_token_branch_on_raw_tokens():
    backbone = MODELS.build(
        dict(
            type='VisionTransformer',
            arch='deit-tiny',
            img_size=SIZE,
            patch_size=16,
            out_type='raw',
            out_indices=(3, 11)))
    branch = MODELS.build(
        dict(
            type='TokenBranch',
            backbone=backbone,
            from_stage=3,
            num_layers=1,
            mid_channels=64))
    tokens = backbone(torch.randn(2, 3, SIZE, SIZE))[0]
    assert tokens.shape == (2, 5, 192)  # class token + 2x2 patches
    assert branch(tokens).shape == (2, 64)


def test_probe_leaves_no_trace():
    backbone = MODELS.build(
        dict(type='MobileNetV2', out_indices=(2, 4, 7)))
    stats = {k: v.clone() for k, v in backbone.state_dict().items()}
    assert probe_out_shapes(backbone) == [(32, 8, 8), (96, 4, 4),
                                          (1280, 2, 2)]
    assert all(m.training for m in backbone.modules())
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, stats[key]), key


def test_docs_worked_example(tmp_path):
    # docs/backbones.md: DKS on RepVGG-A0, for which no config is shipped.
    cfg_file = tmp_path / 'dks_repvgg-A0_8xb32_in1k.py'
    cfg_file.write_text(
        "_base_ = 'mmpretrain::repvgg/repvgg-A0_8xb32_in1k.py'\n"
        "custom_imports = dict(imports=['mmdks'], "
        "allow_failed_imports=False)\n"
        "model = dict(type='DKSClassifier', "
        "backbone=dict(out_indices=(1, 2, 3)), "
        "aux_neck=dict(type='DKSNeck', "
        "branches=[dict(from_stage=1), dict(from_stage=2)]), "
        "aux_head=dict(type='DKSAuxHead'))\n")
    cfg = Config.fromfile(str(cfg_file))
    dks = MODELS.build(cfg.model).eval()
    assert [[block.conv.out_channels for block in branch.blocks]
            for branch in dks.aux_neck.branches] == [[352, 1280], [1280]]
    plain = MODELS.build(plain_model_config(cfg).model).eval()
    kept, _ = strip_state_dict(dks.state_dict(), dks.auxiliary_modules)
    plain.load_state_dict(kept, strict=True)
    inputs = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(
            dks(inputs, mode='tensor'), plain(inputs, mode='tensor'))
