"""What several test files share: paths, configs, models, batches and tiny
image folders."""
import os
import os.path as osp
import runpy
import sys
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
# Probes at 224 cost seconds on 2 cores; ratios of strides are the same at
# 64, which every convolutional recipe here takes.
PROBE_SIZE = 64


def mmpretrain_config(relative_path: str) -> str:
    """Path of one of MMPretrain's own configs (what ``mmpretrain::``
    names inside ``_base_``; ``Config.fromfile`` does not take the prefix)."""
    import mmpretrain
    return osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'configs', relative_path)


def run_script(path: str, *args: str) -> int:
    """Run a tool in this process, as ``python path args`` would; its exit
    status (None if it returns without ``sys.exit``)."""
    old_argv = sys.argv
    sys.argv = [path, *args]
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = old_argv


def load_study():
    """``tools/analysis_tools/fashion_mnist_study.py`` as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'study', osp.join(REPO_ROOT, 'tools', 'analysis_tools',
                          'fashion_mnist_study.py'))
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    return study


def load_config(path: str,
                num_classes: Optional[int] = None,
                probe_size: Optional[int] = PROBE_SIZE) -> Config:
    """A config file (relative to ``configs/`` or absolute), with the head's
    class count and the DKS probe size set for a quick test."""
    cfg = Config.fromfile(path if osp.isabs(path) else
                          osp.join(CONFIG_DIR, path))
    if num_classes is not None:
        cfg.model.head.num_classes = num_classes
    if probe_size is not None and 'aux_neck' in cfg.model:
        cfg.model.aux_neck.probe_size = probe_size
    return cfg


def build_model(cfg: Union[str, Config], **kwargs) -> torch.nn.Module:
    """The initialised model of a config (see :func:`load_config`)."""
    from mmpretrain.registry import MODELS
    if isinstance(cfg, str):
        cfg = load_config(cfg, **kwargs)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def set_key(cfg: Config, key: str, value) -> None:
    """Replace (not merge) the value at a dotted key of ``cfg``."""
    *parents, leaf = key.split('.')
    node = cfg
    for parent in parents:
        node = node[parent]
    node[leaf] = value


def finite(value) -> bool:
    """Whether a logged loss term is finite: a tensor, or a list of them (as
    MMPretrain's heads log their accuracies)."""
    values = value if isinstance(value, list) else [value]
    return all(bool(torch.isfinite(v).all()) for v in values)


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def batch(num_classes: int = 10,
          size: int = 64,
          channels: int = 3,
          num: int = 2) -> Tuple[torch.Tensor, List]:
    """Seeded random images and their labels."""
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    inputs = torch.randn(num, channels, size, size)
    samples = [
        DataSample().set_gt_label(i % num_classes) for i in range(num)
    ]
    return inputs, samples


class RunsCode:
    """A pickle that would create ``marker`` when loaded unsafely."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


def make_imagenet_folder(root: str,
                         num_classes: int = 2,
                         per_class: int = 4,
                         size: int = 40) -> str:
    """Write a tiny ImageNet-layout dataset (``train``/``val`` images and
    ``meta/{train,val}.txt``) whose classes differ in colour."""
    rng = np.random.default_rng(0)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split in ('train', 'val'):
        lines = []
        for label in range(num_classes):
            for i in range(per_class):
                name = f'{split}/c{label}_{i}.JPEG'
                path = osp.join(root, name)
                os.makedirs(osp.dirname(path), exist_ok=True)
                base = np.full((size, size, 3), 60 + 120 * label, np.uint8)
                noise = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
                Image.fromarray(base + noise).save(path)
                lines.append(f'{osp.basename(name)} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root
