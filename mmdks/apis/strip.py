"""Turn a DKS training checkpoint into a plain MMPretrain model.

A :class:`~mmdks.models.DKSClassifier` is MMPretrain's own
``ImageClassifier`` plus training-only modules that the class names in
``auxiliary_modules``. Stripping drops exactly those (the model says what is
auxiliary, nothing is guessed from key names) and writes a checkpoint and a
config that MMPretrain loads without mmdks installed.
"""
import copy
import datetime
import hashlib
import inspect
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import mmpretrain.registry as registries
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import Registry
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

import mmdks
from mmdks.models import DKSClassifier

# What an exported checkpoint may hold besides tensors: anything else would
# make MMPretrain's tools (torch's default weights-only loader) refuse it.
_PLAIN_TYPES = (str, int, float, bool, type(None))
ONNX_TOLERANCE = 1e-4
_SHOWN_KEYS = 3


class CheckpointError(ValueError):
    """A checkpoint that cannot be stripped; the message says why."""


def _dks_class(cfg: Config) -> type:
    model_type = cfg.get('model', {}).get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) \
        else model_type
    if not (isinstance(cls, type) and issubclass(cls, DKSClassifier)):
        raise ValueError(
            f'model.type is {model_type!r}, not DKSClassifier: pass the DKS '
            'training config the checkpoint was trained with')
    return cls


def _mmdks_type_names() -> List[str]:
    """Names of everything mmdks registered into MMPretrain's registries."""
    names = set()
    for registry in vars(registries).values():
        if isinstance(registry, Registry):
            names.update(name for name, cls in registry.module_dict.items()
                         if cls.__module__.split('.')[0] == 'mmdks')
    return sorted(names)


def plain_model_config(cfg: Config) -> Config:
    """The plain MMPretrain config of a DKS config.

    The model becomes an ``ImageClassifier``: the ``auxiliary_modules`` of
    the DKS class and every other argument ``ImageClassifier`` does not take
    (``eval_branches``) are removed, and the backbone returns only the last
    of its DKS ``out_indices``; a backbone class with a ``plain_type`` is
    renamed to it. mmdks metrics (e.g. ``BranchAccuracy``) are removed from
    evaluator lists. Data pipelines, preprocessor, the other metrics and the
    schedule are kept as they are; ``custom_imports`` of mmdks is removed,
    except for a backbone that only mmdks provides (``CifarResNet``,
    ``WideResNet``): that plain model still imports mmdks, for it alone.

    Args:
        cfg (Config): A config whose model is a :class:`DKSClassifier`.

    Returns:
        Config: A new config that needs only MMPretrain (and mmdks for an
        mmdks backbone).

    Raises:
        ValueError: If the model is not a DKS model, or if something outside
            the model (a metric, a transform) still needs mmdks.
    """
    dks_cls = _dks_class(cfg)
    plain = copy.deepcopy(cfg)
    model = plain.model
    keep = set(inspect.signature(ImageClassifier.__init__).parameters)
    for field in list(model):
        if field in dks_cls.auxiliary_modules or (
                field not in keep and field not in ('type', '_scope_')):
            model.pop(field)
    model.type = 'ImageClassifier'
    # A backbone that only re-wires an MMPretrain one names it (and has its
    # state dict), e.g. DKSConvNeXt -> ConvNeXt.
    backbone_cls = MODELS.get(model.backbone.type) \
        if isinstance(model.backbone.type, str) else model.backbone.type
    model.backbone.type = getattr(backbone_cls, 'plain_type',
                                  model.backbone.type)
    # mmdks's own backbones (the paper's CIFAR nets) have no MMPretrain
    # twin: their plain model keeps importing mmdks, for the backbone only.
    own_backbone = model.backbone.type if (
        not hasattr(backbone_cls, 'plain_type')
        and backbone_cls.__module__.split('.')[0] == 'mmdks') else None
    out_indices = model.backbone.get('out_indices')
    if out_indices is not None:
        model.backbone.out_indices = (tuple(out_indices)[-1], )

    # mmdks metrics score the DKS branches, which the plain model lacks.
    mmdks_types = _mmdks_type_names()
    for field in ('val_evaluator', 'test_evaluator'):
        metrics = plain.get(field)
        if isinstance(metrics, list):
            plain[field] = [
                m for m in metrics if m.get('type') not in mmdks_types
            ] or metrics  # only mmdks metrics: the scan below reports them

    imports = plain.get('custom_imports')
    if imports is not None:
        others = [
            name for name in imports.get('imports', [])
            if name.split('.')[0] != 'mmdks'
        ]
        if own_backbone is not None:
            imports.imports = others + ['mmdks']
        elif others:
            imports.imports = others
        else:
            plain.pop('custom_imports')

    text = plain.pretty_text
    allowed = {'mmdks', own_backbone} if own_backbone else set()
    for name in sorted(set(['mmdks'] + mmdks_types) - allowed):
        found = re.search(rf'\b{re.escape(name)}\b', text)
        if found:
            line = text[:found.start()].count('\n') + 1
            raise ValueError(
                f'the plain config still names {name!r} (line {line}: '
                f'{text.splitlines()[line - 1].strip()}); replace it with '
                'an MMPretrain type in the DKS config')
    return plain


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


def _first(keys: Sequence[str]) -> str:
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


def _state_dict_of(checkpoint: dict, path: str) -> Dict[str, torch.Tensor]:
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not state_dict or not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(
            f'{path} has no state_dict of tensors (keys: '
            f'{_first(sorted(map(str, checkpoint)))})')
    return state_dict


def _mismatches(state_dict: Dict[str, torch.Tensor],
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
        f'{len(problems)} {label}: {_first(problems)}'
        for problems, label in ((missing, 'missing keys'),
                                (unexpected, 'unexpected keys'),
                                (shapes,
                                 'shape mismatch (checkpoint vs config)'))
        if problems
    ]


def _check_matches(state_dict: Dict[str, torch.Tensor],
                   expected: Dict[str, torch.Tensor], what: str) -> None:
    """Raise unless ``state_dict`` has exactly the keys and shapes of
    ``expected``."""
    problems = _mismatches(state_dict, expected)
    if problems:
        raise CheckpointError(
            f'{what} does not match CONFIG: {problems[0]}; pass the config '
            'it was trained with')


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
    swapped = {
        key[len('module.'):]: value
        for key, value in ema.items() if key.startswith('module.')
    }
    _check_matches(swapped, state_dict, f'{path} ema_state_dict')


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


def input_shape_of(cfg: Config) -> Tuple[int, int]:
    """``(H, W)`` the test pipeline feeds the model: its last crop size,
    else its last resize scale."""
    shape = None
    for transform in cfg.test_dataloader.dataset.pipeline:
        size = transform.get('crop_size', transform.get('scale'))
        if size is not None:
            shape = size
    if shape is None:
        raise ValueError('cannot tell the input size from the test pipeline '
                         '(no crop_size or scale): pass --shape H W')
    # MMPretrain sizes are (w, h).
    return (shape, shape) if isinstance(shape, int) else (shape[1], shape[0])


def export_onnx(model: torch.nn.Module, path: str,
                shape: Tuple[int, int]) -> float:
    """Export ``model`` (``mode='tensor'``: preprocessed images in, logits
    out) to ONNX with a dynamic batch size and check it with onnxruntime.

    Returns:
        float: The largest absolute logit difference between onnxruntime
        and PyTorch on a random batch of 3 (the export traced a batch of 2).

    Raises:
        ValueError: If the difference exceeds ``ONNX_TOLERANCE``.
    """
    import onnxruntime

    model.eval()
    # The dynamo exporter needs onnxscript; TorchScript export needs nothing.
    torch.onnx.export(
        model, (torch.randn(2, 3, *shape), ),
        path,
        dynamo=False,
        input_names=['input'],
        output_names=['logits'],
        dynamic_axes={
            'input': {
                0: 'batch'
            },
            'logits': {
                0: 'batch'
            }
        },
        opset_version=17)
    inputs = torch.randn(3, 3, *shape)
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    logits = session.run(None, {'input': inputs.numpy()})[0]
    with torch.no_grad():
        expected = model(inputs).numpy()
    diff = float(np.abs(logits - expected).max())
    if diff > ONNX_TOLERANCE:
        raise ValueError(f'ONNX logits differ from PyTorch by {diff:.3g} '
                         f'(> {ONNX_TOLERANCE}); nothing was written')
    return diff


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def strip_checkpoint(config_path: str,
                     checkpoint_path: str,
                     out_dir: str,
                     force: bool = False,
                     ema: bool = False,
                     onnx: bool = False,
                     shape: Optional[Tuple[int, int]] = None) -> dict:
    """Write the plain MMPretrain model of a DKS checkpoint.

    For ``CHECKPOINT = <dir>/<name>.pth`` this writes to ``out_dir``:

    - ``<name>_plain.pth``: ``{'state_dict', 'meta'}``, the weights without
      the DKS ``auxiliary_modules``; ``meta`` holds the source's
      ``dataset_meta`` and ``source``, ``source_sha256``, ``mmdks_version``
      and ``date``;
    - ``<name>_plain.py``: :func:`plain_model_config` of CONFIG;
    - ``<name>_plain.onnx`` if ``onnx``.

    Everything is checked before anything is written, and each file is
    written to a temporary file that is renamed into place.

    Args:
        config_path (str): The DKS training config.
        checkpoint_path (str): A checkpoint of that config (MMEngine's or a
            bare state dict).
        out_dir (str): Output directory, created if needed.
        force (bool): Replace existing outputs. Defaults to False.
        ema (bool): Require and export the EMA weights of MMEngine's
            ``EMAHook``. Defaults to False (the ``state_dict`` as saved,
            which already is the EMA for such checkpoints).
        onnx (bool): Also export ONNX and check it. Defaults to False.
        shape (tuple, optional): ``(H, W)`` ONNX input; defaults to the test
            pipeline's crop size.

    Returns:
        dict: ``params_before``, ``params_after``, ``dropped_keys`` (count),
        ``dropped_prefixes``, ``aux_mismatch`` (how the dropped part differs
        from CONFIG's, if it does), ``weights`` ('ema' or 'state_dict'),
        ``needs_mmdks`` (the plain config imports mmdks for an mmdks
        backbone), ``outputs`` (paths) and ``onnx_max_abs_diff`` (or None).

    Raises:
        CheckpointError: For a checkpoint that is unreadable, unsafe, not
            DKS or not of CONFIG.
        FileExistsError: For existing outputs without ``force``.
        ValueError: For a config that is not DKS or an ONNX mismatch.
    """
    cfg = Config.fromfile(config_path)
    dks_cls = _dks_class(cfg)
    plain_cfg = plain_model_config(cfg)
    name = osp.splitext(osp.basename(checkpoint_path))[0] + '_plain'
    outputs = {
        'checkpoint': osp.join(out_dir, f'{name}.pth'),
        'config': osp.join(out_dir, f'{name}.py'),
    }
    if onnx:
        outputs['onnx'] = osp.join(out_dir, f'{name}.onnx')
        shape = tuple(shape) if shape is not None else input_shape_of(cfg)
    existing = [p for p in outputs.values() if osp.exists(p)]
    if existing and not force:
        raise FileExistsError(f'output exists: {_first(existing)}; pass '
                              '--force to replace')

    checkpoint = load_checkpoint_safely(checkpoint_path)
    state_dict = _state_dict_of(checkpoint, checkpoint_path)
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
    _check_matches(kept, expected, checkpoint_path)
    # The auxiliary part is dropped anyway: where it differs (another mmdks
    # version, another branch design) the export is still exact, so this is
    # only reported.
    aux_mismatch = _mismatches({k: state_dict[k] for k in dropped},
                               {k: full[k] for k in aux_keys})
    if ema:
        _check_ema(checkpoint, state_dict, checkpoint_path)
    meta = checkpoint.get('meta') if 'state_dict' in checkpoint else None
    source_meta = meta if isinstance(meta, dict) else {}

    # The plain config must take the weights as they are.
    plain_model = MODELS.build(plain_cfg.model)
    plain_model.load_state_dict(kept, strict=True)
    exported = {
        'state_dict': kept,
        'meta': {
            'source': osp.abspath(checkpoint_path),
            'source_sha256': _sha256(checkpoint_path),
            'mmdks_version': mmdks.__version__,
            'date': datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec='seconds'),
        },
    }
    if 'dataset_meta' in source_meta:
        exported['meta']['dataset_meta'] = _plain_meta(
            source_meta['dataset_meta'])

    os.makedirs(out_dir, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    temps = {}
    try:
        for kind, path in outputs.items():
            # Hidden, same directory (os.replace is atomic), same extension
            # (Config.dump picks the format from it).
            fd, temps[kind] = tempfile.mkstemp(
                dir=out_dir, prefix=f'.{name}.', suffix=osp.splitext(path)[1])
            os.close(fd)
            os.chmod(temps[kind], 0o666 & ~umask)  # mkstemp makes it 0600
        torch.save(exported, temps['checkpoint'])
        plain_cfg.dump(temps['config'])
        onnx_diff = export_onnx(plain_model, temps['onnx'], shape) \
            if onnx else None
        for kind, path in outputs.items():
            os.replace(temps.pop(kind), path)
    finally:
        for temp in temps.values():
            os.remove(temp)

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
