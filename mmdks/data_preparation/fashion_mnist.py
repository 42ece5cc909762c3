"""Put Fashion-MNIST where MMPretrain's ``FashionMNIST`` reads it.

MMPretrain 1.2.0 reads the four *un-gzipped* idx files from ``data_root``
(the training pair unless ``test_mode=True``). The files come from a source
dir (``.gz`` or raw), Debian's ``dataset-fashion-mnist`` package (installed
by you or ``tools/demo.sh``, never from here), or the canonical URL, and
are checked by the md5 of their decompressed content (Debian recompresses
the archives, so their ``.gz`` md5 differ from upstream's; the content is
the same) and by their idx headers.
"""
import gzip
import hashlib
import os
import os.path as osp
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import BinaryIO, Dict, List, Mapping, Optional, Tuple

from mmdks.utils.fileio import atomic_outputs

URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
DEBIAN_PACKAGE = 'dataset-fashion-mnist'
# Installing a system package is left to the user (or tools/demo.sh).
APT_HINT = f"install Debian's package (`apt-get install {DEBIAN_PACKAGE}`)"
# md5 of the decompressed files.
MD5 = {
    'train-images-idx3-ubyte': 'f4a8712d7a061bf5bd6d2ca38dc4d50a',
    'train-labels-idx1-ubyte': '9018921c3c673c538a1fc5bad174d6f9',
    't10k-images-idx3-ubyte': '8181f5470baa50b63fa0f6fddb340f0a',
    't10k-labels-idx1-ubyte': '15d484375f8d13e6eb1aabb0c3f46965',
}
COUNTS = {'train': 60000, 't10k': 10000}
IMAGE_SIZE = 28
NUM_CLASSES = 10
_IMAGES_MAGIC, _LABELS_MAGIC = 0x803, 0x801
_CHUNK = 1 << 20


class FashionMNISTError(ValueError):
    """A missing, corrupt or unexpected Fashion-MNIST file."""


def check_idx(path: str, name: str, count: int) -> None:
    """Check the idx header, size and labels of one Fashion-MNIST file.

    Args:
        path (str): The un-gzipped file.
        name (str): Its Fashion-MNIST name, e.g. ``'t10k-labels-idx1-ubyte'``.
        count (int): The number of images or labels it must hold.

    Raises:
        FashionMNISTError: If it is not such a file.
    """
    images = 'images' in name
    magic, header = (_IMAGES_MAGIC, 16) if images else (_LABELS_MAGIC, 8)
    expected = [magic, count] + [IMAGE_SIZE] * 2 * images
    with open(path, 'rb') as f:
        head = f.read(header)
        found = [
            int.from_bytes(head[i:i + 4], 'big')
            for i in range(0, len(head), 4)
        ]
        if found != expected:
            raise FashionMNISTError(
                f'{path}: idx header {found} is not {expected} (magic, '
                f'count, rows, cols) of the Fashion-MNIST file {name}')
        body = f.read() if not images else None
    size = osp.getsize(path)
    want = header + count * (IMAGE_SIZE**2 if images else 1)
    if size != want:
        raise FashionMNISTError(
            f'{path}: {size} bytes, expected {want} for {count} items')
    if body is not None and max(body, default=0) >= NUM_CLASSES:
        raise FashionMNISTError(
            f'{path}: a label is {max(body)}, beyond the {NUM_CLASSES} '
            'classes')


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: str, name: str, md5s: Mapping[str, str],
            counts: Mapping[str, int]) -> None:
    found = _md5(path)
    if found != md5s[name]:
        raise FashionMNISTError(
            f'{path}: md5 of the content is {found}, expected {md5s[name]} '
            f'for {name}: the file is corrupt or not Fashion-MNIST')
    check_idx(path, name, counts[name.split('-')[0]])


def _open_source(src_dir: str, name: str) -> Tuple[str, BinaryIO]:
    """The raw or gzipped source of ``name`` in ``src_dir``, opened."""
    for path, opener in ((osp.join(src_dir, name), open),
                         (osp.join(src_dir, name + '.gz'), gzip.open)):
        if osp.isfile(path):
            return path, opener(path, 'rb')
    raise FashionMNISTError(f'{src_dir} has neither {name} nor {name}.gz')


def _has_all(src_dir: str) -> bool:
    return all(
        osp.isfile(osp.join(src_dir, n))
        or osp.isfile(osp.join(src_dir, n + '.gz')) for n in MD5)


def _download(name: str, tmp_dir: str) -> str:
    url = f'{URL}{name}.gz'
    path = osp.join(tmp_dir, name + '.gz')
    try:
        with urllib.request.urlopen(url, timeout=60) as r, \
                open(path, 'wb') as f:
            shutil.copyfileobj(r, f, _CHUNK)
    except (urllib.error.URLError, OSError) as e:
        raise FashionMNISTError(
            f'could not download {url} ({e}); fetch the four .gz files by '
            f'hand and pass --src DIR, or {APT_HINT}') from None
    return path


def _install_file(src_dir: str, name: str, out_dir: str,
                  md5s: Mapping[str, str], counts: Mapping[str, int]) -> str:
    """Decompress ``name`` from ``src_dir`` into ``out_dir`` via a
    temporary file that becomes ``name`` only once verified."""
    src, reader = _open_source(src_dir, name)
    with atomic_outputs([osp.join(out_dir, name)]) as (tmp, ):
        with reader, open(tmp, 'wb') as f:
            try:
                shutil.copyfileobj(reader, f, _CHUNK)
            except (OSError, EOFError) as e:  # bad gzip stream
                raise FashionMNISTError(f'{src}: cannot read ({e})') from None
        _verify(tmp, name, md5s, counts)
    return src


def prepare_fashion_mnist(
        out_dir: str,
        src_dir: Optional[str] = None,
        download: bool = True,
        force: bool = False,
        md5s: Mapping[str, str] = MD5,
        counts: Mapping[str, int] = COUNTS) -> List[Tuple[str, str]]:
    """Write the four un-gzipped Fashion-MNIST idx files into ``out_dir``.

    Files already in ``out_dir`` that verify are kept, so a second run only
    checks. Missing files are taken from, in this order: ``src_dir`` if
    given, Debian's ``/usr/share/datasets/fashion-mnist`` (package
    ``dataset-fashion-mnist``, which this never installs: error messages
    give the command), or the canonical URL. Each is decompressed to a
    temporary file, verified, then renamed.

    Args:
        out_dir (str): The ``data_root`` for MMPretrain's ``FashionMNIST``.
        src_dir (str, optional): A dir with the four files, raw or ``.gz``.
        download (bool): Download when no local source has the files.
            Defaults to True.
        force (bool): Replace files in ``out_dir`` that fail the check
            instead of refusing. Defaults to False.
        md5s (Mapping[str, str]): File name to md5 of its decompressed
            content. Defaults to the real dataset's (:data:`MD5`).
        counts (Mapping[str, int]): ``'train'``/``'t10k'`` to the number of
            items. Defaults to 60000 and 10000.

    Returns:
        list[tuple[str, str]]: ``(file, what was done)`` for each file.

    Raises:
        FashionMNISTError: If a file is missing, corrupt, or an existing
            output is wrong and ``force`` is False.
    """
    os.makedirs(out_dir, exist_ok=True)
    done: Dict[str, str] = {}
    todo = []
    for name in md5s:
        path = osp.join(out_dir, name)
        if not osp.exists(path):
            todo.append(name)
            continue
        try:
            _verify(path, name, md5s, counts)
            done[name] = 'verified, kept'
        except FashionMNISTError as e:
            if not force:
                raise FashionMNISTError(
                    f'{e}. Remove it or pass --force to replace it') from None
            todo.append(name)
    if not todo:
        return list(done.items())

    if src_dir is not None:
        if not osp.isdir(src_dir):
            raise FashionMNISTError(f'--src {src_dir} is not a directory')
    elif _has_all(DEBIAN_DIR):
        src_dir = DEBIAN_DIR
    elif not download:
        raise FashionMNISTError(
            f'no source for {", ".join(todo)}: pass --src DIR, or '
            f'{APT_HINT}')

    for name in todo:
        if src_dir is None:
            with tempfile.TemporaryDirectory(dir=out_dir) as tmp_dir:
                _download(name, tmp_dir)
                _install_file(tmp_dir, name, out_dir, md5s, counts)
            done[name] = f'downloaded {URL}{name}.gz'
        else:
            src = _install_file(src_dir, name, out_dir, md5s, counts)
            done[name] = f'written from {src}'
    return [(name, done[name]) for name in md5s]
