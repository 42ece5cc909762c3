import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

# Triton chooses its interpreter once, when it is imported: without a GPU,
# choose it before any test imports Triton, so that the fused synergy
# loss's kernels run on CPU tensors (tests/test_fused_synergy.py). Nothing
# else here runs Triton on the CPU.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs')


def mmpretrain_config(relative_path: str) -> str:
    """Path of one of MMPretrain's own configs (what ``mmpretrain::``
    names inside ``_base_``; ``Config.fromfile`` does not take the prefix)."""
    import mmpretrain
    return osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'configs', relative_path)


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


@pytest.fixture(scope='session')
def imagenet_folder(tmp_path_factory) -> str:
    return make_imagenet_folder(str(tmp_path_factory.mktemp('imagenet')))
