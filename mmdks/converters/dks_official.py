"""Convert the DKS authors' released ImageNet models to MMPretrain.

The reference repository publishes ResNet-18/50/152 trained with DKS as
torchvision state dicts saved from ``nn.DataParallel`` (every key prefixed
``module.``), the auxiliary branches already removed: plain ResNets.
MMPretrain's ``ResNet`` uses torchvision's parameter names, so, as
MMPretrain's own torchvision converter does, the backbone goes under
``backbone.`` and ``fc`` under ``head.fc.``. The result is checked against
MMPretrain's ResNet of the same depth before anything is written.
"""
import datetime
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict

import torch
from mmengine.config import Config
from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
from mmpretrain.models import ResNet
from mmpretrain.models.backbones.resnet import Bottleneck
from mmpretrain.registry import MODELS

from mmdks.apis.checkpoint import mismatches
from mmdks.apis.checkpoint_loader import (CheckpointError, first_keys,
                                          load_checkpoint_safely)
from mmdks.models import DKSClassifier
from mmdks.utils.fileio import atomic_outputs, write_checkpoint
from mmdks.version import __version__

# How the authors evaluate (imagenet/main.py of the reference code): a
# 256x256 bicubic resize of the PIL image, then the central 224x224.
AUTHORS_TEST_PIPELINE = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(
        type='Resize',
        scale=(256, 256),
        interpolation='bicubic',
        backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]


def _mmpretrain_config(depth: int) -> Config:
    """MMPretrain's ImageNet recipe of ResNet-``depth``."""
    import mmpretrain
    return Config.fromfile(
        osp.join(
            osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'resnet',
            f'resnet{depth}_8xb32_in1k.py'))


def resnet_depth(state_dict: Dict[str, torch.Tensor], path: str) -> int:
    """The depth of the torchvision ResNet whose keys ``state_dict`` has,
    from its blocks per stage and block type (MMPretrain's
    ``ResNet.arch_settings``).

    Raises:
        CheckpointError: If the keys are not those of a ResNet-18/34/50/
            101/152.
    """
    blocks = [0] * 4
    for key in state_dict:
        found = re.match(r'layer([1-4])\.(\d+)\.', key)
        if found:
            stage, block = int(found.group(1)) - 1, int(found.group(2))
            blocks[stage] = max(blocks[stage], block + 1)
    bottleneck = any('.conv3.' in key for key in state_dict)
    for depth, (block_type, stages) in ResNet.arch_settings.items():
        if tuple(blocks) == stages and \
                (block_type is Bottleneck) == bottleneck:
            return depth
    raise CheckpointError(
        f'{path} is not a torchvision ResNet-18/34/50/101/152 state dict: '
        f'found {len(state_dict)} keys ({first_keys(list(state_dict))}), '
        f'{blocks} blocks in layer1-4')


def _torchvision_state_dict(checkpoint: dict,
                            path: str) -> Dict[str, torch.Tensor]:
    """The bare torchvision state dict of a released model, without
    DataParallel's ``module.`` prefix.

    Raises:
        CheckpointError: For a DKS training checkpoint (its branches are
            there), an MMEngine checkpoint or anything but tensors.
    """
    weights = checkpoint.get('state_dict', checkpoint)
    if not isinstance(weights, dict) or not all(
            isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(
            f'{path} is not a state dict of tensors (keys: '
            f'{first_keys(sorted(map(str, checkpoint)))})')
    if weights and all(k.startswith('module.') for k in weights):
        weights = {k[len('module.'):]: v for k, v in weights.items()}
    aux = [
        k for k in weights
        if k.split('.')[0] in DKSClassifier.auxiliary_modules
    ]
    if aux:
        raise CheckpointError(
            f'{path} is a DKS training checkpoint ({len(aux)} '
            f'{"/".join(DKSClassifier.auxiliary_modules)} keys): make its '
            'plain model with tools/strip_heads.py instead')
    if 'state_dict' in checkpoint:
        raise CheckpointError(
            f'{path} is an MMEngine checkpoint (state_dict keys '
            f'{first_keys(list(weights))}), not a torchvision state dict: '
            'an MMPretrain model loads it as it is')
    return weights


def convert_dks_official(src: str, dst: str, force: bool = False) -> dict:
    """Write the MMPretrain checkpoint and test config of a released model.

    Writes ``dst`` (``{'state_dict', 'meta'}``, ``meta`` holding the
    ImageNet ``dataset_meta``, the source path, the mmdks version and the
    date) and ``dst`` with ``.py`` for ``.pth``: MMPretrain's recipe of
    that ResNet with the authors' test pipeline
    (:data:`AUTHORS_TEST_PIPELINE`). Both are checked first and written
    all or nothing.

    Args:
        src (str): A released model: a torchvision ResNet state dict, keys
            optionally prefixed ``module.``.
        dst (str): The checkpoint to write, ending in ``.pth``.
        force (bool): Replace existing outputs. Defaults to False.

    Returns:
        dict: ``depth``, ``num_keys`` and ``outputs`` (``checkpoint``,
        ``config``).

    Raises:
        CheckpointError: For an unreadable or unsafe file, a DKS training
            checkpoint, or anything but a torchvision ResNet of MMPretrain's
            ImageNet shape (1000 classes).
        FileExistsError: For existing outputs without ``force``.
        ValueError: If ``dst`` does not end in ``.pth``.
    """
    if not dst.endswith('.pth'):
        raise ValueError(f'the output must be a .pth file, got {dst}')
    outputs = dict(checkpoint=dst, config=dst[:-len('.pth')] + '.py')
    existing = [p for p in outputs.values() if osp.exists(p)]
    if existing and not force:
        raise FileExistsError(f'output exists: {first_keys(existing)}; pass '
                              '--force to replace')
    weights = _torchvision_state_dict(load_checkpoint_safely(src), src)
    depth = resnet_depth(weights, src)
    converted = OrderedDict(
        (('head.' if k.startswith('fc.') else 'backbone.') + k, v)
        for k, v in weights.items())
    cfg = _mmpretrain_config(depth)
    expected = MODELS.build(cfg.model).state_dict()
    problems = mismatches(converted, expected)
    if problems:
        raise CheckpointError(
            f'{src} does not fit MMPretrain\'s ImageNet ResNet-{depth}: '
            f'{problems[0]} (after adding backbone./head. to the keys)')
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.pipeline = AUTHORS_TEST_PIPELINE
    checkpoint = {
        'state_dict': converted,
        'meta': {
            'dataset_meta': {
                'classes': list(IMAGENET_CATEGORIES)
            },
            'source': osp.abspath(src),
            'mmdks_version': __version__,
            'date': datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec='seconds'),
        },
    }
    with atomic_outputs(list(outputs.values())) as (ckpt, config):
        write_checkpoint(checkpoint, ckpt)
        cfg.dump(config)
    return dict(depth=depth, num_keys=len(converted), outputs=outputs)
