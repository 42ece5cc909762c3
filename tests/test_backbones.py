"""DKS on MMPretrain recipes of every family, by config alone.

For each recipe: the config is the recipe plus the DKS delta only; one
training step runs through the recipe's own data preprocessor (Mixup/CutMix
soft labels where the recipe has them); the model predicts; the checkpoint
is stripped; the unmodified recipe's model loads the stripped weights
strictly and returns bit-identical logits; and, in one process that never
imports mmdks, every written plain config builds, loads and does the same.
"""
import json
import os.path as osp
import subprocess
import sys
from typing import Dict, NamedTuple, Union

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401
from helpers import CONFIG_DIR, REPO_ROOT, mmpretrain_config, set_key
from mmdks.apis import strip_checkpoint


class Recipe(NamedTuple):
    # The shipped DKS config on the recipe, or the DKS delta's branches.
    dks: Union[str, list]
    # Input and probe size of the test: 64 leaves 2x2 maps at stride 32;
    # at 1x1 some recipes' BN statistics break down after a step.
    size: int = 64
    shrink: dict = {}  # test-only overrides, applied to the recipe itself
    branch_type: str = 'ConvBranch'


STAGES_1_2 = [dict(from_stage=1), dict(from_stage=2)]
# Recipes: MMPretrain's (relative to its configs), or ours under configs/.
RECIPES: Dict[str, Recipe] = {
    # ResNet family: a bare branch gets its blocks from the depth.
    'resnet/resnet18_8xb32_in1k.py': Recipe(STAGES_1_2, 64, {},
                                            'ResStageBranch'),
    'resnet/resnet18_8xb16_cifar10.py': Recipe(STAGES_1_2, 64, {},
                                               'ResStageBranch'),
    'res2net/res2net50-w14-s8_8xb32_in1k.py': Recipe(STAGES_1_2, 64, {},
                                                     'ResStageBranch'),
    'resnet/resnetv1d50_8xb32_in1k.py': Recipe(
        'dks_resnetv1d50_8xb32_in1k.py', 64, {}, 'ResStageBranch'),
    'resnext/resnext50-32x4d_8xb32_in1k.py': Recipe(
        'dks_resnext50-32x4d_8xb32_in1k.py', 64, {}, 'ResStageBranch'),
    'seresnet/seresnet50_8xb32_in1k.py': Recipe(
        'dks_seresnet50_8xb32_in1k.py', 64, {}, 'ResStageBranch'),
    'regnet/regnetx-400mf_8xb128_in1k.py': Recipe(
        'dks_regnetx-400mf_8xb128_in1k.py'),
    'cspnet/cspresnet50_8xb32_in1k.py': Recipe(STAGES_1_2),
    'repvgg/repvgg-A0_8xb32_in1k.py': Recipe(STAGES_1_2),
    'mobileone/mobileone-s0_8xb32_in1k.py': Recipe(STAGES_1_2),
    'mobilenet_v2/mobilenet-v2_8xb32_in1k.py': Recipe(
        'dks_mobilenet-v2_8xb32_in1k.py'),
    'mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py': Recipe(
        'dks_mobilenet-v3-small_8xb128_in1k.py'),
    'efficientnet/efficientnet-b0_8xb32_in1k.py': Recipe(
        'dks_efficientnet-b0_8xb32_in1k.py'),
    'efficientnet_v2/efficientnetv2-b0_8xb32_in1k.py': Recipe(
        [dict(from_stage=3), dict(from_stage=5)]),
    'shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py': Recipe(
        'dks_shufflenet-v2-1x_16xb64_in1k.py'),
    'densenet/densenet121_4xb256_in1k.py': Recipe(
        'dks_densenet121_4xb256_in1k.py'),
    # Pooled inside the backbone: branches reach its last stage.
    'convnext/convnext-tiny_32xb128_in1k.py': Recipe(
        'dks_convnext-tiny_32xb128_in1k.py'),
    'convnext_v2/convnext-v2-atto_32xb32_in1k.py': Recipe(STAGES_1_2),
    'edgenext/edgenext-xxsmall_8xb256_in1k.py': Recipe(STAGES_1_2),
    # No stage list: taps by module name.
    'poolformer/poolformer-s12_32xb128_in1k.py': Recipe(
        [dict(tap='network.2'), dict(tap='network.4')]),
    # Stages that are plain ModuleLists stand for their last block.
    'van/van-tiny_8xb128_in1k.py': Recipe(
        [dict(tap='blocks2'), dict(tap='blocks3')]),
    'twins/twins-svt-small_8xb128_in1k.py': Recipe(STAGES_1_2, 64, {},
                                                   'TokenBranch'),
    # A head that keeps no num_classes (VigClsHead): its logits' width.
    'vig/pvig-tiny_8xb128_in1k.py': Recipe(STAGES_1_2, 224),
    # Four parallel outputs into the recipe's own neck; list taps.
    'hrnet/hrnet-w18_4xb32_in1k.py': Recipe('dks_hrnet-w18_4xb32_in1k.py'),
    # Tokens: all of them now, reduced to the class token.
    'deit/deit-tiny_4xb256_in1k.py': Recipe(
        'dks_deit-tiny_4xb256_in1k.py', 32, {'backbone.img_size': 32},
        'TokenBranch'),
    # A class token that the tapped blocks do not carry yet: the mean.
    'xcit/xcit-nano-12-p16_8xb128_in1k.py': Recipe(
        [dict(tap='xca_layers.3'), dict(tap='xca_layers.7')], 64, {},
        'TokenBranch'),
    # Tuple taps (tokens, hw) and windows that need the full 224.
    'swin_transformer/swin-tiny_16xb64_in1k.py': Recipe(
        'dks_swin-tiny_16xb64_in1k.py', 224, {}, 'TokenBranch'),
    # timm's model zoo through MMPretrain's TIMMBackbone.
    'configs/timm/timm-ghostnet-100_8xb32_in1k.py': Recipe(
        'dks_timm-ghostnet-100_8xb32_in1k.py'),
}
# The slowest (seconds each on 2 cores): the reference ResNet-50 branches
# (4x the backbone's parameters), Swin at its full 224, and three more
# recipes of families the default suite covers otherwise.
SLOW = {
    'resnet/resnetv1d50_8xb32_in1k.py',
    'resnext/resnext50-32x4d_8xb32_in1k.py',
    'seresnet/seresnet50_8xb32_in1k.py',
    'swin_transformer/swin-tiny_16xb64_in1k.py',
    'cspnet/cspresnet50_8xb32_in1k.py',
    'mobileone/mobileone-s0_8xb32_in1k.py',
    'efficientnet_v2/efficientnetv2-b0_8xb32_in1k.py',
    'twins/twins-svt-small_8xb128_in1k.py',
    'vig/pvig-tiny_8xb128_in1k.py',
}


PARTS = ('backbone.', 'aux_neck.branches.0.', 'aux_neck.branches.1.',
         'aux_head.heads.0.', 'aux_head.heads.1.', 'head.')


def checksums(model: torch.nn.Module) -> Dict[str, float]:
    """The sum of every weight of each part (float64: any update shows)."""
    sums = dict.fromkeys(PARTS, 0.0)
    for name, param in model.named_parameters():
        part = next((p for p in PARTS if name.startswith(p)), None)
        if part is not None:
            sums[part] += param.detach().double().sum().item()
    return sums


def recipe_path(recipe: str) -> str:
    return osp.join(REPO_ROOT, recipe) if recipe.startswith('configs/') \
        else mmpretrain_config(recipe)


def test_shipped_configs_are_their_recipe_plus_the_delta():
    for recipe, spec in RECIPES.items():
        if isinstance(spec.dks, str):
            cfg = Config.fromfile(osp.join(CONFIG_DIR, spec.dks))
            base = Config.fromfile(recipe_path(recipe))
            for part in ('backbone', 'neck', 'head', 'train_cfg'):
                assert cfg.model.get(part) == base.model.get(part), \
                    (spec.dks, part)
            assert cfg.custom_imports.imports == ['mmdks']


def write_configs(recipe: str, tmp_dir: str) -> str:
    """The shrunk recipe, and the DKS config on it: the recipe plus the DKS
    delta (the shipped one, or the test's) and nothing else. Returns the
    DKS config's path."""
    spec = RECIPES[recipe]
    stem = osp.splitext(osp.basename(recipe))[0]
    plain = osp.join(tmp_dir, f'{stem}.py')
    cfg = Config.fromfile(recipe_path(recipe))
    for key, value in spec.shrink.items():
        set_key(cfg, f'model.{key}', value)
    cfg.dump(plain)
    dks = osp.join(tmp_dir, f'dks_{stem}.py')
    with open(dks, 'w') as f:
        if isinstance(spec.dks, str):
            # Ours on the recipe as shipped, with the test's shrinking.
            f.write(f"_base_ = '{osp.join(CONFIG_DIR, spec.dks)}'\n"
                    f'model = dict({shrink_text(spec.shrink)}'
                    f'aux_neck=dict(probe_size={spec.size}))\n')
        else:
            f.write(f"_base_ = '{plain}'\n"
                    "custom_imports = dict(imports=['mmdks'], "
                    'allow_failed_imports=False)\n'
                    "model = dict(type='DKSClassifier', aux_neck=dict("
                    f"type='DKSNeck', probe_size={spec.size}, "
                    f'branches={spec.dks!r}), '
                    "aux_head=dict(type='DKSAuxHead'))\n")
    return dks


def shrink_text(shrink: dict) -> str:
    """Dotted model overrides as config text: ``a.b=1`` -> ``a=dict(b=1), ``.
    """
    text = ''
    for key, value in shrink.items():
        *parents, leaf = key.split('.')
        text += ''.join(f'{p}=dict(' for p in parents) + \
            f'{leaf}={value!r}' + ')' * len(parents) + ', '
    return text


def data_batch(size: int) -> dict:
    torch.manual_seed(0)
    return dict(
        inputs=[
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
            for _ in range(2)
        ],
        data_samples=[DataSample().set_gt_label(i) for i in range(2)])


def run_recipe(recipe: str, tmp_dir: str) -> dict:
    """Everything the tests check, for one recipe."""
    spec = RECIPES[recipe]
    dks_path = write_configs(recipe, tmp_dir)
    cfg = Config.fromfile(dks_path)
    # What the runner does with the recipe's top-level preprocessor.
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = data_batch(spec.size)

    model.train()
    # A checksum of every part: the step must change each.
    before = checksums(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(data, optim)
    after = checksums(model)
    changed = {part for part in PARTS if after[part] != before[part]}
    model.eval()
    with torch.no_grad():
        predictions = model.val_step(data)
        inputs = model.data_preprocessor(data, False)['inputs']
        logits = model(inputs, mode='tensor')

    checkpoint = osp.join(tmp_dir, f'{osp.basename(dks_path)[:-3]}.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    summary = strip_checkpoint(dks_path, checkpoint,
                               osp.join(tmp_dir, 'deploy'))
    recipe_model = MODELS.build(
        Config.fromfile(osp.join(tmp_dir, osp.basename(recipe))).model)
    stripped = torch.load(summary['outputs']['checkpoint'],
                          weights_only=True)['state_dict']
    recipe_model.load_state_dict(stripped, strict=True)
    recipe_model.eval()
    with torch.no_grad():
        recipe_logits = recipe_model(inputs, mode='tensor')
    expected = osp.join(tmp_dir, f'{osp.basename(dks_path)[:-3]}_io.pth')
    torch.save(dict(inputs=inputs, logits=logits), expected)
    return dict(model=model, log_vars=log_vars, changed=changed,
                predictions=predictions, logits=logits,
                recipe_logits=recipe_logits, summary=summary,
                expected=expected)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """Each recipe's run, made when a test first asks for it."""
    cache = {}

    def get(recipe: str) -> dict:
        if recipe not in cache:
            cache[recipe] = run_recipe(
                recipe, str(tmp_path_factory.mktemp('recipe')))
        return cache[recipe]

    return get


def recipe_params():
    return [
        pytest.param(r, marks=pytest.mark.slow) if r in SLOW else r
        for r in sorted(RECIPES)
    ]


@pytest.mark.parametrize('recipe', recipe_params())
def test_dks_on_the_recipe(recipe, results):
    spec, result = RECIPES[recipe], results(recipe)
    model = result['model']
    assert {type(b).__name__ for b in model.aux_neck.branches} == \
        {spec.branch_type}
    log_vars = result['log_vars']
    for key in ('branch_1/loss', 'branch_2/loss', 'main/loss',
                'loss_synergy'):
        assert torch.isfinite(torch.tensor(log_vars[key])), key
    # The step updated every part, branches included.
    assert result['changed'] == set(PARTS)
    assert result['predictions'][0].pred_score.shape == (
        model.aux_head.num_classes, )
    # Stripped: exactly the recipe's model, bit for bit.
    summary = result['summary']
    assert summary['params_after'] == sum(
        p.numel() for name, p in model.named_parameters()
        if not name.startswith(('aux_neck.', 'aux_head.')))
    assert not summary['needs_mmdks']
    torch.testing.assert_close(result['recipe_logits'], result['logits'],
                               rtol=0, atol=0)


def test_plain_configs_load_without_mmdks(results):
    recipes = [r for r in sorted(RECIPES) if r not in SLOW]
    cases = [
        dict(config=results(r)['summary']['outputs']['config'],
             checkpoint=results(r)['summary']['outputs']['checkpoint'],
             expected=results(r)['expected']) for r in recipes
    ]
    script = (
        'import json, sys, torch\n'
        'from mmengine.config import Config\n'
        'from mmpretrain.registry import MODELS\n'
        'for case in json.loads(sys.argv[1]):\n'
        '    cfg = Config.fromfile(case["config"])\n'
        '    model = MODELS.build(cfg.model).eval()\n'
        '    ckpt = torch.load(case["checkpoint"], weights_only=True)\n'
        '    model.load_state_dict(ckpt["state_dict"], strict=True)\n'
        '    io = torch.load(case["expected"], weights_only=True)\n'
        '    with torch.no_grad():\n'
        '        logits = model(io["inputs"], mode="tensor")\n'
        '    assert torch.equal(logits, io["logits"]), case["config"]\n'
        'assert not any(m.split(".")[0] == "mmdks" for m in sys.modules)\n'
        'print("plain: ok")\n')
    result = subprocess.run(
        [sys.executable, '-c', script, json.dumps(cases)],
        capture_output=True, text=True, cwd=osp.dirname(cases[0]['config']))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'plain: ok' in result.stdout


def test_tokens_are_reduced_to_the_class_token_only_where_they_carry_it(
        results):
    reductions = {
        recipe: [b.reduce for b in results(recipe)['model'].aux_neck.branches]
        for recipe in ('deit/deit-tiny_4xb256_in1k.py',
                       'xcit/xcit-nano-12-p16_8xb128_in1k.py')
    }
    assert reductions == {
        'deit/deit-tiny_4xb256_in1k.py': ['cls', 'cls'],
        'xcit/xcit-nano-12-p16_8xb128_in1k.py': ['mean', 'mean']
    }


@pytest.mark.parametrize('custom_backward', [True, False])
def test_a_tap_without_gradient_fails_in_training(custom_backward):
    """RevViT's reversible backprop runs its layers inside an autograd
    Function: taps there would leave the backbone untrained by DKS."""
    cfg = Config.fromfile(
        mmpretrain_config('revvit/revvit-small_8xb256_in1k.py'))
    cfg.model.backbone.update(
        arch=dict(embed_dims=64, num_layers=3, num_heads=2,
                  feedforward_channels=128),
        img_size=32, no_custom_backward=not custom_backward)
    cfg.model.head.in_channels = 128
    cfg.model.update(
        type='DKSClassifier', data_preprocessor=cfg.data_preprocessor,
        aux_neck=dict(type='DKSNeck', branches=[
            dict(tap='layers.1', tap_index=0)]),
        aux_head=dict(type='DKSAuxHead'))
    model = MODELS.build(cfg.model).train()
    data = model.data_preprocessor(data_batch(32), True)
    if custom_backward:
        with pytest.raises(RuntimeError, match="tap 'layers.1' has "
                           'trainable parameters but its output carries no '
                           'gradient'):
            model.loss(data['inputs'], data['data_samples'])
    else:
        losses = model.loss(data['inputs'], data['data_samples'])
        losses['branch_1/loss'].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in model.backbone.layers[0].parameters())


def test_a_head_without_num_classes_gives_its_logits_width():
    """A bare ClsHead (VGG, InceptionV3: the backbone classifies itself)
    keeps no num_classes: the width of what it returns is the count."""
    cfg = Config.fromfile(
        mmpretrain_config('resnet/resnet18_8xb16_cifar10.py'))
    set_key(cfg, 'model.head', dict(type='ClsHead'))
    cfg.model.update(
        type='DKSClassifier',
        aux_neck=dict(type='DKSNeck', probe_size=32,
                      branches=[dict(from_stage=2)]),
        aux_head=dict(type='DKSAuxHead'))
    model = MODELS.build(cfg.model)
    assert model.aux_head.num_classes == 512
    losses = model.train().loss(
        torch.randn(2, 3, 32, 32),
        [DataSample().set_gt_label(i) for i in range(2)])
    assert torch.isfinite(losses['loss_synergy'])
