"""Heads own their losses: the DKS model's ``main/`` loss is the plain
model's ``head.loss`` on the same batch and weights, whatever the head."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.models import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401
from helpers import batch, load_config

NUM_CLASSES = 10
HEADS = {
    'linear-ce': dict(type='LinearClsHead', num_classes=NUM_CLASSES,
                      in_channels=512),
    'linear-label-smoothing': dict(
        type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original')),
    # The margin is added only in loss(), with the targets.
    'arcface': dict(type='ArcFaceClsHead', num_classes=NUM_CLASSES,
                    in_channels=512),
    'stacked-linear': dict(type='StackedLinearClsHead',
                           num_classes=NUM_CLASSES, in_channels=512,
                           mid_channels=[64]),
}


def dks_and_plain(cfg: Config):
    """A DKS model and the plain model of the same config, sharing the main
    path's weights."""
    torch.manual_seed(0)
    dks = MODELS.build(cfg.model)
    dks.init_weights()
    plain = MODELS.build(
        dict(type='ImageClassifier', backbone=cfg.model.backbone,
             neck=cfg.model.get('neck'), head=cfg.model.head))
    plain.load_state_dict(
        {k: v for k, v in dks.state_dict().items()
         if not k.startswith(dks.auxiliary_modules)}, strict=True)
    return dks.train(), plain.train()


def assert_main_losses_equal(dks, plain, inputs, samples):
    expected = plain.loss(inputs, samples)
    losses = dks.loss(inputs, samples)
    assert {k for k in losses if k.startswith('main/') and 'loss' in k} == \
        {f'main/{k}' for k in expected if 'loss' in k}
    for key, value in expected.items():
        if 'loss' in key:
            torch.testing.assert_close(losses[f'main/{key}'], value,
                                       rtol=0, atol=0)
    return losses


@pytest.mark.parametrize('name', sorted(HEADS))
def test_main_loss_is_the_head_s_own(name):
    cfg = load_config('dks_resnet18_8xb32_in1k.py')
    cfg.model.head = HEADS[name]
    dks, plain = dks_and_plain(cfg)
    inputs, samples = batch(NUM_CLASSES)
    losses = assert_main_losses_equal(dks, plain, inputs, samples)
    assert losses['loss_synergy'].item() > 0
    assert {'branch_1/loss', 'branch_2/loss'} <= set(losses)


def test_arcface_margin_reaches_the_training_loss():
    # Without its margin (what the head's forward gives), the ArcFace loss
    # of the same batch is lower: DKS must train with the margin.
    cfg = load_config('dks_resnet18_8xb32_in1k.py')
    cfg.model.head = HEADS['arcface']
    dks, _ = dks_and_plain(cfg)
    inputs, samples = batch(NUM_CLASSES)
    with_margin = dks.loss(inputs, samples)['main/loss']
    logits = dks.forward_logits(inputs)[-1]
    target = torch.cat([s.gt_label for s in samples])
    without = torch.nn.functional.cross_entropy(logits, target)
    assert with_margin.item() > without.item() + 1e-3


def test_vision_transformer_head():
    cfg = load_config('dks_deit-tiny_4xb256_in1k.py', num_classes=NUM_CLASSES)
    cfg.model.backbone.img_size = 32
    cfg.model.pop('train_cfg')  # hard labels here; Mixup below
    assert cfg.model.head.type == 'VisionTransformerClsHead'
    dks, plain = dks_and_plain(cfg)
    inputs, samples = batch(NUM_CLASSES, size=32)
    assert_main_losses_equal(dks, plain, inputs, samples)


def test_mixup_and_cutmix_soft_targets():
    # DeiT's recipe mixes labels: every head gets the soft scores, and no
    # accuracy is computed (it would be meaningless).
    cfg = load_config('dks_deit-tiny_4xb256_in1k.py')
    cfg.model.backbone.img_size = 32
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    dks, plain = dks_and_plain(cfg)
    assert not dks.aux_head.cal_acc
    data = dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                for _ in range(4)],
        data_samples=[DataSample().set_gt_label(i) for i in range(4)])
    torch.manual_seed(1)
    mixed = dks.data_preprocessor(data, training=True)
    assert mixed['data_samples'][0].gt_score.shape == (1000, )
    losses = assert_main_losses_equal(dks, plain, mixed['inputs'],
                                      mixed['data_samples'])
    assert not [k for k in losses if 'accuracy' in k]
    assert all(torch.isfinite(v) for v in losses.values())


def test_cal_acc_with_mixed_labels_is_refused():
    cfg = load_config('dks_deit-tiny_4xb256_in1k.py')
    cfg.model.backbone.img_size = 32
    cfg.model.aux_head.cal_acc = True
    with pytest.raises(ValueError, match='model.aux_head.cal_acc=True: the '
                       'recipe mixes labels'):
        MODELS.build(cfg.model)


def test_branch_heads_use_the_main_head_s_loss():
    cfg = load_config('dks_resnet18_8xb32_in1k.py')
    cfg.model.head = HEADS['linear-label-smoothing']
    dks, _ = dks_and_plain(cfg)
    for head in dks.aux_head.heads:
        assert type(head.loss_module).__name__ == 'LabelSmoothLoss'
        assert head.loss_module.label_smooth_val == 0.1
        assert head.loss_module is not dks.head.loss_module


@MODELS.register_module(force=True)
class TwoScoresHead(LinearClsHead):
    """Scores every sample twice and trains both, as Conformer's head
    does with its convolution and transformer scores."""

    def forward(self, feats):
        scores = super().forward(feats)
        return [scores, scores]

    def _get_loss(self, cls_score, data_samples, **kwargs):
        return {'loss': sum(super(TwoScoresHead, self)._get_loss(
            s, data_samples, **kwargs)['loss'] for s in cls_score)}


def test_a_head_with_several_scores_is_refused_at_build():
    cfg = load_config('dks_resnet18_8xb32_in1k.py')
    cfg.model.head = dict(type='TwoScoresHead', num_classes=NUM_CLASSES,
                          in_channels=512)
    with pytest.raises(ValueError, match=r'model.head \(TwoScoresHead\) '
                       r'scores \[\(10,\), \(10,\)\] per sample, not one'):
        MODELS.build(cfg.model)
