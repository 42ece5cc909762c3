"""Loading checkpoints safely and checking that they fit a model."""
import os.path as osp
import pickle
import re
import zipfile
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper

_SHOWN_KEYS = 3


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


def first_keys(keys: Sequence[str]) -> str:
    """The first few of ``keys`` and how many more there are."""
    more = f' (+{len(keys) - _SHOWN_KEYS} more)' \
        if len(keys) > _SHOWN_KEYS else ''
    return ', '.join(keys[:_SHOWN_KEYS]) + more


def load_checkpoint_safely(path: str) -> dict:
    """Load a checkpoint with torch's weights-only loader.

    MMEngine's own globals are allowlisted when mmdks is imported
    (:mod:`mmdks.utils.safe_globals`); anything else a pickle asks for is
    refused before it runs.

    Raises:
        CheckpointError: Missing, unreadable, truncated or unsafe files and
            files that are not a dict.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path} does not exist')
    with open(path, 'rb') as f:
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
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r'Unsupported global: GLOBAL (\S+)', str(e))
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


def state_dict_of(checkpoint: dict, path: str) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint: its ``state_dict``, or the
    checkpoint itself when it is a bare state dict.

    Raises:
        CheckpointError: If there is no dict of tensors.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not state_dict or not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(
            f'{path} has no state_dict of tensors (keys: '
            f'{first_keys(sorted(map(str, checkpoint)))})')
    return state_dict


def mismatches(state_dict: Dict[str, torch.Tensor],
               expected: Dict[str, torch.Tensor]) -> List[str]:
    """How ``state_dict`` differs from ``expected`` in keys and shapes, one
    line per kind of difference (empty if it does not)."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f'{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    return [
        f'{len(problems)} {label}: {first_keys(problems)}'
        for problems, label in ((missing, 'missing keys'),
                                (unexpected, 'unexpected keys'),
                                (shapes,
                                 'shape mismatch (checkpoint vs config)'))
        if problems
    ]


def check_matches(state_dict: Dict[str, torch.Tensor],
                  expected: Dict[str, torch.Tensor], what: str) -> None:
    """Raise unless ``state_dict`` has exactly the keys and shapes of
    ``expected``.

    Raises:
        CheckpointError: Naming the first few offending keys.
    """
    problems = mismatches(state_dict, expected)
    if problems:
        raise CheckpointError(
            f'{what} does not match CONFIG: {problems[0]}; pass the config '
            'it was trained with')


def check_checkpoint_fits(model: nn.Module, path: str) -> None:
    """Refuse a checkpoint that cannot initialise ``model``.

    MMEngine loads ``load_from``, ``--resume`` and test checkpoints
    non-strictly, so a checkpoint of another model would leave random
    weights behind a warning. This loads ``path`` with torch's safe loader
    (one clear error for missing, truncated, foreign or unsafe files) and
    requires the model's keys and shapes, except that the auxiliary parts a
    plain checkpoint lacks (``auxiliary_modules``, e.g. DKS branches when
    starting from a plain MMPretrain model) may be missing. Remote paths
    (``scheme://``) are left to MMEngine.

    Raises:
        CheckpointError: With the first few offending keys.
    """
    if '://' in path:
        return
    if is_model_wrapper(model):
        model = model.module
    state_dict = state_dict_of(load_checkpoint_safely(path), path)
    optional = tuple(f'{name}.'
                     for name in getattr(model, 'auxiliary_modules', ()))
    expected = {
        k: v
        for k, v in model.state_dict().items()
        if k in state_dict or not k.startswith(optional)
    }
    problems = mismatches(state_dict, expected)
    if problems:
        raise CheckpointError(
            f'{path} does not fit the model of this config: {problems[0]}; '
            'pass the checkpoint of this model or the config it was '
            'trained with')
