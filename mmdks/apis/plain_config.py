"""The plain MMPretrain config of a DKS config."""
import copy
import inspect
import re
from typing import List

import mmpretrain.registry as registries
from mmengine.config import Config
from mmengine.registry import Registry
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from mmdks.models import DKSClassifier


def dks_class(cfg: Config) -> type:
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
    dks_cls = dks_class(cfg)
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
