"""Checking a checkpoint before MMEngine loads it into a model."""
import torch.nn as nn
from mmengine.model import is_model_wrapper

from .strip import (CheckpointError, _mismatches, _state_dict_of,
                    load_checkpoint_safely)


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
    state_dict = _state_dict_of(load_checkpoint_safely(path), path)
    optional = tuple(f'{name}.'
                     for name in getattr(model, 'auxiliary_modules', ()))
    expected = {
        k: v
        for k, v in model.state_dict().items()
        if k in state_dict or not k.startswith(optional)
    }
    problems = _mismatches(state_dict, expected)
    if problems:
        raise CheckpointError(
            f'{path} does not fit the model of this config: {problems[0]}; '
            'pass the checkpoint of this model or the config it was '
            'trained with')
