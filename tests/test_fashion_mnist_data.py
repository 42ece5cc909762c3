"""``tools/dataset_converters/prepare_fashion_mnist.py``: the four idx files
MMPretrain's ``FashionMNIST`` reads, verified, written atomically, once."""
import gzip
import hashlib
import os
import os.path as osp
import subprocess

import numpy as np
import pytest

from helpers import REPO_ROOT, run_script
from mmdks.data_preparation import FashionMNISTError, prepare_fashion_mnist
from mmdks.data_preparation import fashion_mnist
from mmdks.data_preparation.fashion_mnist import DEBIAN_DIR, MD5

TOOL = osp.join(REPO_ROOT, 'tools', 'dataset_converters',
                'prepare_fashion_mnist.py')
NAMES = tuple(MD5)
FAKE_COUNTS = {'train': 5, 't10k': 3}


def idx_bytes(name: str, count: int, seed: int = 0) -> bytes:
    """A valid idx file of ``count`` random images or labels."""
    rng = np.random.default_rng(seed)
    if 'images' in name:
        header = [0x803, count, 28, 28]
        body = rng.integers(0, 256, count * 28 * 28, dtype=np.uint8)
    else:
        header = [0x801, count]
        body = rng.integers(0, 10, count, dtype=np.uint8)
    return b''.join(n.to_bytes(4, 'big') for n in header) + body.tobytes()


@pytest.fixture
def fake_src(tmp_path):
    """A dir with four small gzipped idx files, and their content md5s."""
    src = tmp_path / 'src'
    src.mkdir()
    contents, md5s = {}, {}
    for name in NAMES:
        data = idx_bytes(name, FAKE_COUNTS[name.split('-')[0]])
        with gzip.open(src / f'{name}.gz', 'wb') as f:
            f.write(data)
        contents[name] = data
        md5s[name] = hashlib.md5(data).hexdigest()
    return str(src), contents, md5s


def listing(folder: str) -> dict:
    return {
        name: (os.stat(osp.join(folder, name)).st_mtime_ns,
               open(osp.join(folder, name), 'rb').read())
        for name in sorted(os.listdir(folder))
    }


def run_tool(*args: str) -> int:
    return run_script(TOOL, *args)


def test_writes_verified_files_then_only_checks(fake_src, tmp_path):
    src, contents, md5s = fake_src
    out = str(tmp_path / 'out')
    done = prepare_fashion_mnist(out, src, md5s=md5s, counts=FAKE_COUNTS)
    assert [name for name, _ in done] == list(NAMES)
    assert all(what.startswith('written from') for _, what in done)
    first = listing(out)
    assert {name: data for name, (_, data) in first.items()} == contents

    again = prepare_fashion_mnist(out, src, md5s=md5s, counts=FAKE_COUNTS)
    assert again == [(name, 'verified, kept') for name in NAMES]
    assert listing(out) == first


def test_raw_source_and_only_missing_files(fake_src, tmp_path):
    src, contents, md5s = fake_src
    raw = tmp_path / 'raw'
    raw.mkdir()
    for name, data in contents.items():
        (raw / name).write_bytes(data)
    out = str(tmp_path / 'out')
    prepare_fashion_mnist(out, str(raw), md5s=md5s, counts=FAKE_COUNTS)
    os.remove(osp.join(out, NAMES[1]))
    done = dict(
        prepare_fashion_mnist(out, str(raw), md5s=md5s, counts=FAKE_COUNTS))
    assert done[NAMES[1]] == f'written from {raw / NAMES[1]}'
    assert done[NAMES[0]] == 'verified, kept'


def test_wrong_md5_writes_nothing(fake_src, tmp_path):
    src, _, _ = fake_src
    out = str(tmp_path / 'out')
    # The real dataset's md5s: the fake files fail them.
    with pytest.raises(FashionMNISTError, match='md5 of the content'):
        prepare_fashion_mnist(out, src, counts=FAKE_COUNTS)
    assert os.listdir(out) == []


def test_bad_header_and_truncated_gzip(fake_src, tmp_path):
    src, contents, md5s = fake_src
    name = NAMES[0]
    bad = bytearray(contents[name])
    bad[7] = 9  # count 9 instead of 5
    with gzip.open(osp.join(src, f'{name}.gz'), 'wb') as f:
        f.write(bytes(bad))
    out = str(tmp_path / 'out')
    with pytest.raises(FashionMNISTError, match='idx header'):
        prepare_fashion_mnist(
            out,
            src,
            md5s={
                **md5s, name: hashlib.md5(bad).hexdigest()
            },
            counts=FAKE_COUNTS)
    assert os.listdir(out) == []

    packed = gzip.compress(contents[name])
    with open(osp.join(src, f'{name}.gz'), 'wb') as f:
        f.write(packed[:len(packed) // 2])
    with pytest.raises(FashionMNISTError, match='cannot read'):
        prepare_fashion_mnist(out, src, md5s=md5s, counts=FAKE_COUNTS)
    assert os.listdir(out) == []


def test_wrong_existing_output_is_kept_unless_forced(fake_src, tmp_path):
    src, contents, md5s = fake_src
    out = tmp_path / 'out'
    out.mkdir()
    (out / NAMES[2]).write_bytes(b'not idx')
    with pytest.raises(FashionMNISTError, match='--force'):
        prepare_fashion_mnist(str(out), src, md5s=md5s, counts=FAKE_COUNTS)
    assert (out / NAMES[2]).read_bytes() == b'not idx'
    prepare_fashion_mnist(
        str(out), src, force=True, md5s=md5s, counts=FAKE_COUNTS)
    assert (out / NAMES[2]).read_bytes() == contents[NAMES[2]]


def test_without_a_source_it_suggests_apt_get_and_runs_nothing(
        monkeypatch, tmp_path):
    # No Debian files and no download: the library names the command and
    # installs nothing itself.
    monkeypatch.setattr(fashion_mnist, 'DEBIAN_DIR', str(tmp_path / 'none'))
    monkeypatch.setattr(subprocess, 'run', None)  # calling it would fail
    with pytest.raises(FashionMNISTError,
                       match='`apt-get install dataset-fashion-mnist`'):
        prepare_fashion_mnist(str(tmp_path / 'out'), download=False)


def test_cli_checks_against_the_real_md5s(fake_src, tmp_path, capsys):
    src, _, _ = fake_src
    out = str(tmp_path / 'out')
    assert run_tool('--src', src, '--out', out) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'md5' in err
    assert run_tool('--src', str(tmp_path / 'nowhere'), '--out', out) == 1
    assert 'not a directory' in capsys.readouterr().err


@pytest.mark.skipif(
    not osp.isdir(DEBIAN_DIR), reason='dataset-fashion-mnist not installed')
def test_real_data_from_the_debian_package(tmp_path, capsys):
    from mmpretrain.datasets import FashionMNIST
    out = str(tmp_path / 'fashion_mnist')
    assert run_tool('--out', out) == 0
    assert capsys.readouterr().out.count('written from') == 4
    sizes = {name: os.path.getsize(osp.join(out, name)) for name in NAMES}
    assert sizes == {
        'train-images-idx3-ubyte': 16 + 60000 * 784,
        'train-labels-idx1-ubyte': 8 + 60000,
        't10k-images-idx3-ubyte': 16 + 10000 * 784,
        't10k-labels-idx1-ubyte': 8 + 10000,
    }
    assert run_tool('--out', out) == 0
    assert capsys.readouterr().out.count('verified, kept') == 4

    test_set = FashionMNIST(data_root=out, split='test', test_mode=True)
    train_set = FashionMNIST(data_root=out, test_mode=False, lazy_init=True)
    assert len(test_set) == 10000
    assert test_set[0]['img'].shape == (28, 28)
    assert 0 <= int(test_set[0]['gt_label']) < 10
    train_set.full_init()
    assert len(train_set) == 60000
