"""Checking that a checkpoint fits a model before it is used."""
import logging
from typing import Dict, List

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from .checkpoint_loader import (CheckpointError, first_keys,
                                load_checkpoint_safely)


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


def check_finite(state_dict: Dict[str, torch.Tensor], what: str,
                 allow: bool = False) -> None:
    """Refuse floating-point weights holding NaN or inf.

    Such a checkpoint was saved after training diverged; a model built from
    it predicts nothing useful.

    Args:
        state_dict (dict): Parameter name to tensor.
        what (str): What to call the weights in messages.
        allow (bool): Only log a warning (``--allow-nonfinite``). Defaults
            to False.

    Raises:
        CheckpointError: Naming the first few such tensors, unless
            ``allow``.
    """
    bad = [
        k for k, v in state_dict.items()
        if v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if not bad:
        return
    message = f'{what} has NaN or inf in {len(bad)} tensors: ' \
        f'{first_keys(bad)}'
    if not allow:
        raise CheckpointError(
            f'{message}; training had diverged when it was saved: use an '
            'earlier checkpoint, or pass --allow-nonfinite to use it anyway')
    print_log(
        f'{message} (used anyway: --allow-nonfinite)',
        logger='current',
        level=logging.WARNING)


def check_checkpoint_fits(model: nn.Module,
                          path: str,
                          allow_nonfinite: bool = False) -> None:
    """Refuse a checkpoint that cannot initialise ``model``.

    MMEngine loads ``load_from``, ``--resume`` and test checkpoints
    non-strictly, so a checkpoint of another model would leave random
    weights behind a warning. This loads ``path`` with
    :func:`load_checkpoint_safely` (one clear error for missing, truncated,
    foreign or unsafe files, local or remote) and requires the model's keys
    and shapes, except that the auxiliary parts a plain checkpoint lacks
    (``auxiliary_modules``, e.g. DKS branches when starting from a plain
    MMPretrain model) may be missing, and finite weights
    (:func:`check_finite`).

    Args:
        model (nn.Module): The model the checkpoint is for.
        path (str): The checkpoint, anything
            :func:`load_checkpoint_safely` reads.
        allow_nonfinite (bool): Accept NaN or inf weights with a warning.
            Defaults to False.

    Raises:
        CheckpointError: With the first few offending keys.
    """
    if is_model_wrapper(model):
        model = model.module
    state_dict = state_dict_of(load_checkpoint_safely(path), path)
    upgrade = getattr(model, 'upgrade_state_dict', None)
    if upgrade is not None:  # keys of older versions, renamed on loading
        state_dict = upgrade(state_dict)
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
    check_finite(state_dict, path, allow_nonfinite)


def load_exactly(model: nn.Module,
                 state_dict: Dict[str, torch.Tensor]) -> None:
    """Load every key of ``state_dict`` into ``model``, as strictly as the
    model allows: keys that the model's own load hooks drop whatever a
    checkpoint holds (SwinV2 re-initialises its relative-position buffers,
    so MMPretrain cannot load even its own state dict strictly) are the
    only ones that may stay missing.

    Raises:
        RuntimeError: For any other missing or unexpected key.
    """
    result = model.load_state_dict(state_dict, strict=False)
    if not (result.missing_keys or result.unexpected_keys):
        return
    dropped = set(
        model.load_state_dict(model.state_dict(), strict=False).missing_keys)
    missing = [k for k in result.missing_keys if k not in dropped]
    unexpected = result.unexpected_keys
    if missing or unexpected:
        raise RuntimeError(
            f'Error(s) in loading state_dict for {type(model).__name__}: '
            f'missing keys {first_keys(missing) if missing else "none"}, '
            'unexpected keys '
            f'{first_keys(unexpected) if unexpected else "none"}')
