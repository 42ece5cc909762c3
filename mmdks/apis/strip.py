"""Turn a DKS training checkpoint into a plain MMPretrain model.

A :class:`~mmdks.models.DKSClassifier` is MMPretrain's own
``ImageClassifier`` plus training-only modules that the class names in
``auxiliary_modules``. Stripping drops exactly those (the model says what is
auxiliary, nothing is guessed from key names) and writes a checkpoint and a
config that MMPretrain loads without mmdks installed.
"""
import datetime
import hashlib
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmdks.models import DKSClassifier
from mmdks.utils.fileio import atomic_outputs, write_checkpoint
from mmdks.version import __version__
from .checkpoint import (check_finite, check_matches, load_exactly,
                         mismatches, state_dict_of)
from .checkpoint_loader import (CheckpointError, first_keys, is_remote,
                                load_checkpoint_safely)
from .onnx import export_onnx, input_shape_of
from .plain_config import dks_class, plain_model_config

# What an exported checkpoint may hold besides tensors: anything else would
# make MMPretrain's tools (torch's default weights-only loader) refuse it.
_PLAIN_TYPES = (str, int, float, bool, type(None))


def strip_state_dict(
        state_dict: Dict[str, torch.Tensor],
        prefixes: Sequence[str]) -> Tuple[OrderedDict, List[str]]:
    """Split a state dict into the keys outside and under ``prefixes``.

    Args:
        state_dict (dict): Parameter name to tensor.
        prefixes (Sequence[str]): Module names, e.g. ``('aux_neck',)``; a
            key is dropped if it starts with ``prefix + '.'``.

    Returns:
        tuple: ``(kept, dropped)``, the kept items in their original order
        and the dropped key names.
    """
    starts = tuple(f'{prefix}.' for prefix in prefixes)
    kept, dropped = OrderedDict(), []
    for key, value in state_dict.items():
        if key.startswith(starts):
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _check_ema(checkpoint: dict, state_dict: Dict[str, torch.Tensor],
               path: str) -> None:
    """Check a checkpoint holds the EMA weights of MMEngine's ``EMAHook``.

    On save the hook swaps every ``module.<key>`` of ``ema_state_dict`` with
    ``state_dict[<key>]`` (``EMAHook._swap_ema_state_dict``): ``state_dict``
    then holds the averaged weights and ``ema_state_dict`` the trained ones.
    This checks that the swap covered every weight of the model.
    """
    ema = checkpoint.get('ema_state_dict')
    if not isinstance(ema, dict):
        raise CheckpointError(
            f'--ema: {path} has no ema_state_dict (train with '
            "custom_hooks=[dict(type='EMAHook')]) or drop --ema")
    swapped = DKSClassifier.upgrade_state_dict({
        key[len('module.'):]: value
        for key, value in ema.items() if key.startswith('module.')
    })
    check_matches(swapped, state_dict, f'{path} ema_state_dict')


def _plain_meta(meta: object, field: str = 'meta.dataset_meta') -> object:
    """Check ``meta`` holds only types torch's default loader accepts."""
    if isinstance(meta, dict):
        return {k: _plain_meta(v, f'{field}.{k}') for k, v in meta.items()}
    if isinstance(meta, (list, tuple)):
        return type(meta)(_plain_meta(v, field) for v in meta)
    if isinstance(meta, np.generic):
        return meta.item()
    if not isinstance(meta, _PLAIN_TYPES):
        raise CheckpointError(
            f'{field} holds a {type(meta).__name__}, which MMPretrain '
            'cannot load safely; make it a list or a number')
    return meta


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def strip_checkpoint(config_path: str,
                     checkpoint_path: str,
                     out_dir: str,
                     force: bool = False,
                     ema: bool = False,
                     onnx: bool = False,
                     shape: Optional[Tuple[int, int]] = None,
                     allow_nonfinite: bool = False,
                     cfg_options: Optional[dict] = None) -> dict:
    """Write the plain MMPretrain model of a DKS checkpoint.

    For ``CHECKPOINT = <dir>/<name>.pth`` this writes to ``out_dir``:

    - ``<name>_plain.pth``: ``{'state_dict', 'meta'}``, the weights without
      the DKS ``auxiliary_modules``; ``meta`` holds the source's
      ``dataset_meta`` and ``source``, ``source_sha256``, ``mmdks_version``
      and ``date``;
    - ``<name>_plain.py``: :func:`plain_model_config` of CONFIG;
    - ``<name>_plain.onnx`` if ``onnx``.

    Everything is checked before anything is written, and each file is
    written to a temporary file that is renamed into place. With ``force``
    the outputs replace an earlier result set as a whole (a ``.onnx`` of an
    earlier ``onnx`` run is removed).

    Args:
        config_path (str): The DKS training config.
        checkpoint_path (str): A local checkpoint of that config (MMEngine's
            or a bare state dict).
        out_dir (str): Output directory, created if needed.
        force (bool): Replace existing outputs. Defaults to False.
        ema (bool): Require and export the EMA weights of MMEngine's
            ``EMAHook``. Defaults to False (the ``state_dict`` as saved,
            which already is the EMA for such checkpoints).
        onnx (bool): Also export ONNX and check it. Defaults to False.
        shape (tuple, optional): ``(H, W)`` ONNX input; defaults to the test
            pipeline's crop size.
        allow_nonfinite (bool): Export weights holding NaN or inf (with a
            warning) instead of refusing them. Defaults to False.
        cfg_options (dict, optional): Overrides of CONFIG, as
            ``--cfg-options`` gives them (the ones the run was trained
            with); the plain config has them too.

    Returns:
        dict: ``params_before``, ``params_after``, ``dropped_keys`` (count),
        ``dropped_prefixes``, ``aux_mismatch`` (how the dropped part differs
        from CONFIG's, if it does), ``weights`` ('ema' or 'state_dict'),
        ``needs_mmdks`` (the plain config imports mmdks for an mmdks
        backbone), ``outputs`` (paths) and ``onnx_max_abs_diff`` (or None).

    Raises:
        CheckpointError: For a checkpoint that is remote, unreadable,
            unsafe, not DKS, not of CONFIG or not finite.
        FileExistsError: For existing outputs without ``force``.
        OSError: If writing fails (e.g. the disk is full); nothing is
            written then.
        ValueError: For a config that is not DKS or an ONNX mismatch.
    """
    if is_remote(checkpoint_path):
        # The export records the source's absolute path and sha256.
        raise CheckpointError(
            f'{checkpoint_path}: strip_heads reads a local file; download '
            'it and pass its path')
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    dks_cls = dks_class(cfg)
    plain_cfg = plain_model_config(cfg)
    name = osp.splitext(osp.basename(checkpoint_path))[0] + '_plain'
    result_set = {
        kind: osp.join(out_dir, f'{name}.{ext}')
        for kind, ext in (('checkpoint', 'pth'), ('config', 'py'),
                          ('onnx', 'onnx'))
    }
    outputs = {k: p for k, p in result_set.items() if k != 'onnx' or onnx}
    if onnx:
        shape = tuple(shape) if shape is not None else input_shape_of(cfg)
    existing = [p for p in result_set.values() if osp.exists(p)]
    if existing and not force:
        raise FileExistsError(f'output exists: {first_keys(existing)}; pass '
                              '--force to replace')

    checkpoint = load_checkpoint_safely(checkpoint_path)
    state_dict = dks_cls.upgrade_state_dict(
        state_dict_of(checkpoint, checkpoint_path))
    prefixes = dks_cls.auxiliary_modules
    kept, dropped = strip_state_dict(state_dict, prefixes)
    if not dropped:
        raise CheckpointError(
            f'{checkpoint_path} is not a DKS checkpoint: no '
            f'{"/".join(prefixes)} weights (a plain model needs no '
            'stripping)')
    dks_model = MODELS.build(cfg.model)
    full = dks_model.state_dict()
    expected, aux_keys = strip_state_dict(full, prefixes)
    check_matches(kept, expected, checkpoint_path)
    check_finite(kept, checkpoint_path, allow_nonfinite)
    # The auxiliary part is dropped anyway: where it differs (another mmdks
    # version, another branch design) the export is still exact, so this is
    # only reported.
    aux_mismatch = mismatches({k: state_dict[k] for k in dropped},
                              {k: full[k] for k in aux_keys})
    if ema:
        _check_ema(checkpoint, state_dict, checkpoint_path)
    meta = checkpoint.get('meta') if 'state_dict' in checkpoint else None
    source_meta = meta if isinstance(meta, dict) else {}

    # The plain config must take the weights as they are.
    plain_model = MODELS.build(plain_cfg.model)
    load_exactly(plain_model, kept)
    exported = {
        'state_dict': kept,
        'meta': {
            'source': osp.abspath(checkpoint_path),
            'source_sha256': _sha256(checkpoint_path),
            'mmdks_version': __version__,
            'date': datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec='seconds'),
        },
    }
    if 'dataset_meta' in source_meta:
        exported['meta']['dataset_meta'] = _plain_meta(
            source_meta['dataset_meta'])

    try:
        with atomic_outputs(list(outputs.values())) as temps:
            temp = dict(zip(outputs, temps))
            write_checkpoint(exported, temp['checkpoint'])
            plain_cfg.dump(temp['config'])
            onnx_diff = export_onnx(plain_model, temp['onnx'], shape) \
                if onnx else None
    except OSError as e:
        raise OSError(f'cannot write to {out_dir} ({e.strerror or e}); '
                      'nothing was written') from None
    for kind, path in result_set.items():
        if kind not in outputs and osp.exists(path):
            os.remove(path)  # an earlier run's: the set is replaced whole

    return dict(
        params_before=_num_params(dks_model),
        params_after=_num_params(plain_model),
        dropped_keys=len(dropped),
        dropped_prefixes=list(prefixes),
        aux_mismatch=aux_mismatch,
        weights='ema' if 'ema_state_dict' in checkpoint else 'state_dict',
        needs_mmdks='mmdks' in plain_cfg.get('custom_imports',
                                             {}).get('imports', []),
        outputs=outputs,
        onnx_max_abs_diff=onnx_diff)
