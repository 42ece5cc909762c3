import functools
import http.server
import os
import os.path as osp
import threading

import numpy as np
import pytest
from PIL import Image

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


class RunsCode:
    """A pickle that would create ``marker`` when loaded unsafely."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope='session')
def http_root(tmp_path_factory):
    """``(folder, url)``: ``folder`` served at ``url`` by an HTTP server on
    127.0.0.1 only, in a thread of this process."""
    folder = str(tmp_path_factory.mktemp('served'))
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler,
                                            directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    thread.join()
