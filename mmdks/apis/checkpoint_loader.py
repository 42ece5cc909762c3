"""Loading checkpoints safely, wherever they are.

Every checkpoint mmdks or MMEngine opens goes through
:func:`load_checkpoint_safely`: importing mmdks registers it for all of
MMEngine's ``CheckpointLoader`` schemes (``load_from``, ``resume``, test
checkpoints, ``init_cfg=dict(type='Pretrained')``).
"""
import contextlib
import os.path as osp
import pickle
import re
import sys
import tempfile
import zipfile
from typing import Callable, Dict, Iterator, Optional, Sequence, Union
from urllib.parse import urlparse
from urllib.request import url2pathname

import torch
from mmengine.fileio import get_local_path
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        _process_mmcls_checkpoint,
                                        find_latest_checkpoint,
                                        get_deprecated_model_names,
                                        get_external_models,
                                        get_mmcls_models,
                                        get_torchvision_models)

_SHOWN_KEYS = 3
# A location with a scheme, as MMEngine's CheckpointLoader prefixes match
# it: at the start (``runs/x://a.pth`` is a local path).
_SCHEME = re.compile(r'([A-Za-z][\w+.-]*)://')
_HTTP = re.compile(r'https?://')
# MMEngine's prefixes for its Petrel (Ceph) file backend.
_PETREL = re.compile(r'(\S+:)?(s3|petrel)://')
_MODEL_ZOOS = ('torchvision', 'modelzoo', 'open-mmlab', 'openmmlab', 'mmcls')
MapLocation = Union[str, torch.device, Callable, Dict[str, str], None]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


def first_keys(keys: Sequence[str]) -> str:
    """The first few of ``keys`` and how many more there are."""
    more = f' (+{len(keys) - _SHOWN_KEYS} more)' \
        if len(keys) > _SHOWN_KEYS else ''
    return ', '.join(keys[:_SHOWN_KEYS]) + more


def is_remote(path: str) -> bool:
    """Whether ``path`` names a location by a scheme (``https://``,
    ``s3://``, ``cluster:s3://``, ``torchvision://``, ...) rather than a
    local file."""
    return bool(_SCHEME.match(path) or _PETREL.match(path))


def _model_zoo_location(path: str) -> str:
    """The URL (or file in MMEngine's home) of one of MMEngine's model-zoo
    names, e.g. ``torchvision://resnet50`` or ``open-mmlab://...``."""
    scheme, name = path.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        urls = get_torchvision_models()
    elif scheme == 'mmcls':
        urls = get_mmcls_models()
    else:
        urls = get_external_models()
        name = get_deprecated_model_names().get(name, name)
    if name not in urls:
        raise CheckpointError(
            f'{path}: MMEngine knows no {scheme}:// model named {name!r}; '
            'pass a file or a URL')
    url = urls[name]
    return url if _HTTP.match(url) else osp.join(_get_mmengine_home(), url)


@contextlib.contextmanager
def _local_file(path: str) -> Iterator[str]:
    """A local file with the contents at ``path``: the file itself, or a
    download that is removed afterwards."""
    if _HTTP.match(path):
        with tempfile.TemporaryDirectory() as tmp:
            file = osp.join(tmp, 'checkpoint')
            try:
                torch.hub.download_url_to_file(
                    path, file, progress=sys.stderr.isatty())
            except OSError as e:  # incl. urllib's URLError and HTTPError
                raise CheckpointError(
                    f'cannot download {path} ({e}); check the URL, or '
                    'download the file and pass its path') from None
            yield file
    elif _PETREL.match(path):
        with get_local_path(path, backend_args={'backend': 'petrel'}) as f:
            yield f
    elif path.startswith('file://'):
        yield url2pathname(urlparse(path).path)
    elif is_remote(path):
        raise CheckpointError(
            f'{path}: mmdks cannot read {path.split("://")[0]}:// safely; '
            'download the file and pass its path')
    else:
        yield osp.expanduser(path)


def _load_file(file: str, path: str, map_location: MapLocation) -> dict:
    """Load the local ``file`` (the contents of ``path``) with torch's
    weights-only loader; errors name ``path``."""
    if osp.isdir(file):
        raise CheckpointError(
            f'{path} is a directory; pass a checkpoint file in it (e.g. '
            'epoch_N.pth)')
    if not osp.isfile(file):
        raise CheckpointError(f'checkpoint {path} does not exist')
    with open(file, 'rb') as f:
        magic = f.read(4)
    # torch.save writes a zip archive; its legacy format and plain pickles
    # (protocol >= 2) start with the PROTO opcode.
    if not magic:
        raise CheckpointError(f'{path} is empty; copy it again')
    if not (magic == b'PK\x03\x04' or magic[:1] == b'\x80'):
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint (neither a zip archive nor '
            'a pickle)')
    try:
        # Explicit: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only overrides a
        # default.
        checkpoint = torch.load(
            file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # 'Unsupported global: GLOBAL x' or, for a blocked module
        # (posix, subprocess, ...), 'unsupported GLOBAL x whose module'.
        unsafe = re.search(r'[Uu]nsupported (?:global: )?GLOBAL (\S+)',
                           str(e))
        if unsafe:
            raise CheckpointError(
                f'refusing {path}: its pickle calls {unsafe.group(1)}, which '
                'could run code; it was not loaded') from None
        if 'Weights only load failed' in str(e):
            raise CheckpointError(
                f'refusing {path}: its pickle uses instructions the safe '
                'loader does not allow; it was not loaded') from None
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint ({e})') from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        reason = str(e).split('.')[0] or type(e).__name__
        raise CheckpointError(
            f'{path} is truncated or corrupt ({reason}); copy it '
            'again') from None
    except (KeyError, ValueError) as e:
        raise CheckpointError(
            f'{path} is not a PyTorch checkpoint ({type(e).__name__}: '
            f'{e})') from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{path} holds a {type(checkpoint).__name__}, '
                              'not a checkpoint dict')
    return checkpoint


def load_checkpoint_safely(path: str,
                           map_location: MapLocation = 'cpu') -> dict:
    """Load a checkpoint with torch's weights-only loader.

    MMEngine's own globals are allowlisted when mmdks is imported
    (:mod:`mmdks.utils.safe_globals`); anything else a pickle asks for is
    refused before it runs, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    says.

    Args:
        path (str): A local file (``~`` is expanded), a ``file://`` or
            ``http(s)://`` URL (downloaded to a temporary file, every time),
            an ``s3://`` or ``petrel://`` location (MMEngine's Petrel
            backend) or one of MMEngine's model-zoo names
            (``torchvision://``, ``modelzoo://``, ``open-mmlab://``,
            ``openmmlab://``, ``mmcls://``).
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint (for ``mmcls://``, its backbone weights, as
        MMEngine loads them).

    Raises:
        CheckpointError: Missing, unreadable, truncated or unsafe files,
            directories, files that are not a dict, failed downloads and
            schemes mmdks cannot read safely (``pavi://``).
    """
    scheme = _SCHEME.match(path)
    if scheme and scheme.group(1) in _MODEL_ZOOS:
        checkpoint = load_checkpoint_safely(
            _model_zoo_location(path), map_location)
        return _process_mmcls_checkpoint(checkpoint) \
            if scheme.group(1) == 'mmcls' else checkpoint
    with _local_file(path) as file:
        return _load_file(file, path, map_location)


def load_from_weights_only(filename: str,
                           map_location: MapLocation = None) -> dict:
    """:func:`load_checkpoint_safely` with MMEngine's loader signature
    (MMEngine logs the part of the name after ``load_from_``)."""
    return load_checkpoint_safely(filename, map_location)


def register_checkpoint_loader() -> None:
    """Make :func:`load_checkpoint_safely` MMEngine's loader for every
    scheme its ``CheckpointLoader`` knows (``''`` matches local paths).

    MMEngine's own loaders unpickle URL and model-zoo downloads without
    weights-only (``torch.hub.load_state_dict_from_url``) and local files
    with torch's overridable default. Replacing every registered prefix,
    rather than a list written here, leaves none of them behind.
    """
    CheckpointLoader.register_scheme(
        list(CheckpointLoader._schemes), load_from_weights_only, force=True)


def auto_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` without a path resumes from.

    That is the one ``WORK_DIR/last_checkpoint`` names (MMEngine's
    ``find_latest_checkpoint``); resolving it here lets the caller check it
    like any other checkpoint.

    Returns:
        str or None: The path, or None when there is no ``last_checkpoint``
        (MMEngine then trains from the start).

    Raises:
        CheckpointError: If ``last_checkpoint`` is empty.
    """
    path = find_latest_checkpoint(work_dir)
    if path == '':
        raise CheckpointError(
            f'{osp.join(work_dir, "last_checkpoint")} is empty; write the '
            'path of the checkpoint to resume from into it, or pass '
            '--resume CHECKPOINT')
    return path
