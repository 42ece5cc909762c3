"""The plain MMPretrain config of a DKS config."""
import copy
import inspect
import re
from typing import Dict, Set

import mmpretrain.registry as registries
from mmengine.config import Config
from mmengine.registry import Registry
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from mmdks.models import DKSClassifier

# Top-level config lists whose entries may be mmdks types (metrics, hooks).
_TYPED_LISTS = ('val_evaluator', 'test_evaluator', 'custom_hooks')


def dks_class(cfg: Config) -> type:
    """The DKS model class of ``cfg``.

    Raises:
        ValueError: If the config's model is not a :class:`DKSClassifier`.
    """
    model_type = cfg.get('model', {}).get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) \
        else model_type
    if not (isinstance(cls, type) and issubclass(cls, DKSClassifier)):
        raise ValueError(
            f'model.type is {model_type!r}, not DKSClassifier: pass the DKS '
            'training config the checkpoint was trained with')
    return cls


def _mmdks_types() -> Dict[str, type]:
    """Everything mmdks registered into MMPretrain's registries, by name."""
    types = {}
    for registry in vars(registries).values():
        if isinstance(registry, Registry):
            types.update((name, cls)
                         for name, cls in registry.module_dict.items()
                         if cls.__module__.split('.')[0] == 'mmdks')
    return types


def plain_model_config(cfg: Config) -> Config:
    """The plain MMPretrain config of a DKS config: the DKS config minus the
    DKS parts, nothing renamed or rewritten.

    The model becomes an ``ImageClassifier`` without the
    ``auxiliary_modules`` of the DKS class and the other arguments
    ``ImageClassifier`` does not take (``eval_branches``); backbone, neck,
    head and preprocessor stay exactly as configured, so the plain model's
    state dict is the DKS model's without the auxiliary keys. mmdks metrics
    and hooks (``BranchAccuracy``, ``SynergyWarmupHook``) are dropped from
    the evaluators and ``custom_hooks``; ``custom_imports`` of mmdks is
    removed, except for a backbone that only mmdks provides
    (``CifarResNet``, ``WideResNet``): that plain model still imports
    mmdks, for it alone.

    Args:
        cfg (Config): A config whose model is a :class:`DKSClassifier`.

    Returns:
        Config: A new config that needs only MMPretrain (and mmdks for an
        mmdks backbone).

    Raises:
        ValueError: If the model is not a DKS model, or if something else
            (a transform, a neck) still needs mmdks.
    """
    dks_cls = dks_class(cfg)
    plain = copy.deepcopy(cfg)
    model = plain.model
    keep = set(inspect.signature(ImageClassifier.__init__).parameters)
    for field in list(model):
        if field in dks_cls.auxiliary_modules or (
                field not in keep and field not in ('type', '_scope_')):
            model.pop(field)
    model.type = 'ImageClassifier'

    mmdks_types = _mmdks_types()
    for field in _TYPED_LISTS:
        entries = plain.get(field)
        if isinstance(entries, list):
            kept = [e for e in entries if e.get('type') not in mmdks_types]
            # Only mmdks metrics: the scan below reports them.
            plain[field] = kept or entries if 'evaluator' in field else kept

    backbone = model.backbone.type
    own_backbone: Set[str] = {backbone} if backbone in mmdks_types else set()
    imports = plain.get('custom_imports')
    if imports is not None:
        others = [
            name for name in imports.get('imports', [])
            if name.split('.')[0] != 'mmdks'
        ]
        if own_backbone:
            imports.imports = others + ['mmdks']
        elif others:
            imports.imports = others
        else:
            plain.pop('custom_imports')

    text = plain.pretty_text
    allowed = {'mmdks'} | own_backbone if own_backbone else set()
    for name in sorted(({'mmdks'} | set(mmdks_types)) - allowed):
        found = re.search(rf'\b{re.escape(name)}\b', text)
        if found:
            line = text[:found.start()].count('\n') + 1
            raise ValueError(
                f'the plain config still names {name!r} (line {line}: '
                f'{text.splitlines()[line - 1].strip()}); replace it with '
                'an MMPretrain type in the DKS config')
    return plain
