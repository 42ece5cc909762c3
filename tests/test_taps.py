"""Taps: branches read named modules of an unmodified backbone."""
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import ExponentialMovingAverage, convert_sync_batchnorm
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401
from helpers import REPO_ROOT, batch, build_model, load_config
from mmdks.apis import plain_model_config
from mmdks.models.utils import (OutputRecorder, probe_backbone,
                                tap_candidates)


class Permute(nn.Module):
    """NCHW -> NHWC, as channels-last backbones return their stages."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class Pair(nn.Module):
    """A (map, size) tuple, as Swin's stages return."""

    def forward(self, x: torch.Tensor):
        return x, x.shape[-2:]


class TinyBackbone(nn.Module):
    """Three conv stages; one stage's output also channels-last, one as a
    tuple; a module that never runs; one that runs twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            for c_in, c_out in ((3, 8), (8, 16), (16, 32)))
        self.nhwc = Permute()
        self.pair = Pair()
        self.unused = nn.Conv2d(8, 8, 1)
        self.shared = nn.Identity()

    def forward(self, x: torch.Tensor):
        x = self.shared(self.stages[0](x))
        x = self.stages[1](self.nhwc(x).permute(0, 3, 1, 2))
        return (self.stages[2](self.shared(self.pair(x)[0])), )


def tiny_backbone() -> nn.Module:
    return TinyBackbone()


def neck(branches, backbone=None, **kwargs):
    return MODELS.build(
        dict(type='DKSNeck', branches=branches, probe_size=32, **kwargs),
        default_args=dict(backbone=backbone or tiny_backbone()))


def test_channels_last_and_tuple_taps():
    backbone = tiny_backbone()
    dks = neck([dict(tap='nhwc'), dict(tap='pair', tap_index=0)], backbone)
    assert [t.layout for t in dks.taps] == ['NHWC', 'NCHW']
    assert [t.shape for t in dks.taps] == [(8, 16, 16), (16, 8, 8)]
    with dks.record(backbone) as taps:
        backbone(torch.randn(2, 3, 32, 32))
    feats = dks(taps)
    assert [f.shape for f in feats] == [(2, 32), (2, 32)]


@pytest.mark.parametrize('branch,message', [
    (dict(tap='unused'), "tap 'unused' does not run"),
    (dict(tap='shared'), 'runs 2 times in one forward pass'),
    (dict(tap='pair'), "returns 2 outputs [(16, 8, 8), None]; choose one "
     'with tap_index'),
    (dict(tap='pair', tap_index=1), 'tap_index=1 is not a tensor output'),
    (dict(tap='stages.2'), 'at or after the module that produces'),
    (dict(tap='stags.1'), 'nearest: stages.1'),
    (dict(tap=1), 'tap=1 must be a module name'),
    (dict(from_stage=1, type='ResStageBranch'),
     'continues a ResNet-family backbone'),
])
def test_bad_taps_fail_with_the_field(branch, message):
    with pytest.raises((ValueError, TypeError), match='branches') as error:
        neck([branch])
    assert message in str(error.value)


def test_from_stage_counts_the_stage_list():
    dks = neck([dict(from_stage=0), dict(from_stage=1)])
    assert [t.name for t in dks.taps] == ['stages.0', 'stages.1']
    assert [t.stage for t in dks.taps] == [0, 1]


class NestedStages(nn.Module):
    """Stages as a ModuleList of ModuleLists (Twins, VAN): a stage itself
    never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(c_in, c_out, 3, stride, padding=1),
                           nn.Conv2d(c_out, c_out, 3, padding=1)])
            for c_in, c_out, stride in ((3, 8, 4), (8, 16, 2), (16, 32, 2),
                                        (32, 64, 2)))

    def forward(self, x: torch.Tensor):
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return (x, )


def test_a_stage_that_never_runs_stands_for_its_last_block():
    backbone = NestedStages()
    dks = neck([dict(from_stage=1), dict(tap='stages.2')], backbone)
    assert [t.name for t in dks.taps] == ['stages.1.1', 'stages.2.1']
    assert [t.stage for t in dks.taps] == [1, 2]
    assert [t.shape for t in dks.taps] == [(16, 4, 4), (32, 2, 2)]
    ends = {c.name: c.stage_end
            for c in tap_candidates(backbone, probe_backbone(backbone, 32))}
    assert ends['stages.1.1'] == 8 and ends['stages.2.1'] == 16
    with dks.record(backbone) as taps:
        backbone(torch.randn(2, 3, 32, 32))
    assert [f.shape for f in dks(taps)] == [(2, 64), (2, 64)]


def test_ambiguous_layout_needs_the_field():
    backbone = tiny_backbone()
    backbone.stages[0] = nn.Conv2d(3, 16, 3, stride=2, padding=1)
    backbone.stages[1] = nn.Conv2d(16, 16, 3, stride=2, padding=1)
    # (16, 16, 16) per sample: NCHW and NHWC look alike; the square-spatial
    # rule reads NCHW, and layout= says otherwise.
    assert neck([dict(tap='stages.0')], backbone).taps[0].layout == 'NCHW'
    taps = neck([dict(tap='nhwc', layout='NHWC')], backbone).taps
    assert taps[0].layout == 'NHWC'


def test_probe_leaves_no_trace_and_is_cached():
    backbone = MODELS.build(dict(type='MobileNetV2'))
    stats = {k: v.clone() for k, v in backbone.state_dict().items()}
    probe = probe_backbone(backbone, 64)
    assert probe.output_shapes == [(1280, 2, 2)]
    assert probe.runs['layer3'].shape == (32, 8, 8)
    assert all(m.training for m in backbone.modules())
    assert not backbone._forward_hooks
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, stats[key]), key
    assert probe_backbone(backbone, 64) is probe


def test_probe_uses_the_backbone_s_own_size():
    # MLP-Mixer takes its own input size and nothing else.
    mixer = MODELS.build(
        dict(type='MlpMixer', img_size=48, patch_size=16,
             arch=dict(embed_dims=8, num_layers=2, tokens_mlp_dims=8,
                       channels_mlp_dims=8)))
    assert probe_backbone(mixer).input_shape == (3, 48, 48)
    with pytest.raises(ValueError, match='3x64x64 probe input .*; set '
                       'model.aux_neck.probe_size'):
        probe_backbone(mixer, 64)


def test_vit_branches_get_all_tokens():
    cfg = load_config('dks_deit-tiny_4xb256_in1k.py', probe_size=None)
    cfg.model.backbone.img_size = 32
    cfg.model.aux_neck.branches = [dict(tap='layers.3', num_layers=1,
                                        mid_channels=64)]
    model = build_model(cfg)
    assert model.aux_neck.taps[0].shape == (5, 192)  # class token + 2x2
    assert model.aux_neck.branches[0].reduce == 'cls'
    inputs, _ = batch(size=32)
    assert [x.shape for x in model.forward_logits(inputs)] == [(2, 1000)] * 2


def test_timm_taps_by_timm_names_and_feature_info():
    pytest.importorskip('timm')
    backbone = MODELS.build(dict(type='TIMMBackbone', model_name='resnet18'))
    dks = neck([dict(tap='layer2'), dict(from_stage=3)], backbone)
    assert [t.name for t in dks.taps] == ['timm_model.layer2',
                                          'timm_model.layer3']


def test_recorder_keeps_outputs_only_inside_and_survives_a_deep_copy():
    model = build_model('dks_resnet18_8xb32_in1k.py', num_classes=10)
    inputs, _ = batch()
    model.eval()
    with model.aux_neck.record(model.backbone) as taps:
        model.backbone(inputs)
    assert set(taps) == {'layer2', 'layer3'}
    model.backbone(inputs)  # outside: nothing kept
    assert not model.aux_neck.recorder._outputs
    # MMEngine's EMA deep-copies the model: the copy taps its own backbone.
    ema = ExponentialMovingAverage(model)
    with torch.no_grad():
        expected = model.forward_logits(inputs)
        copied = ema.module.forward_logits(inputs)
    for x, y in zip(expected, copied):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    ema.module.aux_neck.branches[0].layers[0][0].conv1.weight.data.zero_()
    with torch.no_grad():
        assert torch.equal(model.forward_logits(inputs)[0], expected[0])


def test_a_tapped_layer_replaced_after_the_build_is_still_tapped():
    # MMEngine's sync_bn swaps every BN layer for a new SyncBN one after
    # the model is built; a branch tapping a BN layer keeps reading it.
    cfg = load_config('dks_resnet18_8xb32_in1k.py', num_classes=10)
    cfg.model.aux_neck.branches[0] = dict(type='ConvBranch',
                                          tap='layer2.0.downsample.1')
    model = build_model(cfg).eval()
    inputs, _ = batch()
    with torch.no_grad():
        expected = model.forward_logits(inputs)
        synced = convert_sync_batchnorm(model).eval()
        assert type(synced.backbone.layer2[0].downsample[1]).__name__ == \
            'SyncBatchNorm'
        for x, y in zip(expected, synced.forward_logits(inputs)):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_recorder_refuses_a_module_that_runs_twice():
    layer = nn.Identity()
    recorder = OutputRecorder({'twice': layer})
    with pytest.raises(RuntimeError, match='twice ran twice'):
        with recorder:
            layer(layer(torch.zeros(1)))


def test_stage_ends_of_the_paper_s_rule():
    backbone = MODELS.build(dict(type='ConvNeXt', arch='tiny'))
    ends = {c.name: c.stage_end
            for c in tap_candidates(backbone, probe_backbone(backbone, 64))
            if c.stage_end}
    assert ends == {'stages.1': 8, 'stages.2': 16}


def test_list_taps_tool():
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/list_taps.py',
         'configs/dks_resnet18_8xb32_in1k.py', '--probe-size', '64',
         '--depth', '0'], cwd=REPO_ROOT, capture_output=True, text=True,
        env={'PYTHONPATH': REPO_ROOT, 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line.split()[0]: line for line in result.stdout.splitlines()
             if line.startswith('layer')}
    assert '(128, 8, 8)' in lines['layer2'] and 'stride-8 stage' in \
        lines['layer2']
    assert 'stride-16 stage' in lines['layer3']
    assert lines['layer4'].rstrip().endswith('-')


def test_docs_worked_example(tmp_path):
    # docs/backbones.md: DKS on RepVGG-A0, for which no config is shipped.
    cfg_file = tmp_path / 'dks_repvgg-A0_8xb32_in1k.py'
    cfg_file.write_text(
        "_base_ = 'mmpretrain::repvgg/repvgg-A0_8xb32_in1k.py'\n"
        "custom_imports = dict(imports=['mmdks'], "
        "allow_failed_imports=False)\n"
        "model = dict(type='DKSClassifier', "
        "aux_neck=dict(type='DKSNeck', "
        "branches=[dict(from_stage=1), dict(from_stage=2)]), "
        "aux_head=dict(type='DKSAuxHead'))\n")
    cfg = Config.fromfile(str(cfg_file))
    assert 'out_indices' not in str(cfg_file.read_text())
    cfg.model.aux_neck.probe_size = 64
    dks = build_model(cfg)
    assert [b.tap for b in dks.aux_neck.branches] == ['stage_2', 'stage_3']
    assert [[block.conv.out_channels for block in branch.blocks]
            for branch in dks.aux_neck.branches] == [[352, 1280], [1280]]
    plain = MODELS.build(plain_model_config(cfg).model)
    plain.load_state_dict(
        {k: v for k, v in dks.state_dict().items()
         if not k.startswith(('aux_neck.', 'aux_head.'))}, strict=True)
    dks.eval(), plain.eval()
    inputs, _ = batch(size=64)
    with torch.no_grad():
        assert torch.equal(dks(inputs, mode='tensor'),
                           plain(inputs, mode='tensor'))
