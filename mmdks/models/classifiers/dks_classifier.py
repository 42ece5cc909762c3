import contextlib
import copy
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.models.heads import (ClsHead, DeiTClsHead, LeViTClsHead,
                                     MultiLabelClsHead)
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmdks.structures import MAIN
from ..heads import upgrade_aux_head_keys
from ..utils import OutputRecorder, probe_backbone


@MODELS.register_module()
class DKSClassifier(ImageClassifier):
    """Image classifier trained with Deeply-supervised Knowledge Synergy.

    The backbone, neck and head are built from exactly the plain recipe's
    config and run exactly as in :class:`ImageClassifier`. DKS adds two
    training-only parts, named in :attr:`auxiliary_modules`: ``aux_neck``
    (:class:`DKSNeck`, branches that read taps on the backbone's modules)
    and ``aux_head`` (:class:`DKSAuxHead`, their classifiers and the DKS
    objective). Dropping them leaves the plain model, key for key
    (``tools/strip_heads.py``).

    ``aux_neck`` is built with the backbone at hand; ``aux_head`` gets its
    ``in_channels`` from the neck, its ``num_classes`` and loss from the
    main head (a head that keeps no ``num_classes``, as ``ClsHead`` on a
    backbone that classifies itself, gives the width of its logits), and
    ``cal_acc`` on unless the recipe mixes labels (Mixup/CutMix). The
    finished model runs one dummy forward and loss at the probe size, so
    that a wrong setting fails when the model is built, naming the part.

    Training (``mode='loss'``) lets every classifier compute its loss with
    its own ``loss()`` (the main head's exactly as in MMPretrain, under
    ``main/``), and the synergy term compares the logits those losses
    scored (ArcFace's with its margin). ``predict`` and ``tensor`` run
    only the plain model's path, unless ``eval_branches`` is set: then
    ``predict`` also attaches ``branch_scores`` of shape (K, num_classes) to
    each sample (every classifier's softmax, branches first, main last).

    Args:
        backbone (dict): The plain model's backbone.
        aux_neck (dict): :class:`DKSNeck` config.
        aux_head (dict): :class:`DKSAuxHead` config.
        neck (dict, optional): The plain model's neck.
        head (dict): The plain model's head, a single-label ``ClsHead``.
        eval_branches (bool): Score every branch in ``predict``. Defaults
            to False.
        **kwargs: ``pretrained``, ``train_cfg``, ``data_preprocessor`` and
            ``init_cfg`` of :class:`ImageClassifier`.
    """

    auxiliary_modules = ('aux_neck', 'aux_head')

    def __init__(self,
                 backbone: dict,
                 aux_neck: dict,
                 aux_head: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 eval_branches: bool = False,
                 **kwargs) -> None:
        super().__init__(backbone, neck=neck, head=head, **kwargs)
        _check_head(self.head)
        for field, cfg in (('aux_neck', aux_neck), ('aux_head', aux_head)):
            if not isinstance(cfg, dict):
                raise ValueError(
                    f'model.{field}={cfg!r} must be a config dict; a plain '
                    'model needs type=ImageClassifier instead of '
                    'DKSClassifier')
        self.aux_neck = MODELS.build(
            aux_neck, default_args=dict(backbone=self.backbone))
        mixes_labels = getattr(self.data_preprocessor, 'batch_augments',
                               None) is not None
        aux_head = dict(aux_head)
        if aux_head.get('cal_acc') and mixes_labels:
            raise ValueError(
                'model.aux_head.cal_acc=True: the recipe mixes labels '
                '(Mixup/CutMix batch augments), which have no accuracy; '
                'leave cal_acc out')
        num_classes = getattr(self.head, 'num_classes', None)
        if num_classes is None:
            num_classes = self._scored_classes()
        expected_fields = (('in_channels', list(self.aux_neck.out_channels)),
                           ('num_classes', num_classes))
        for field, expected in expected_fields:
            given = aux_head.setdefault(field, expected)
            if (list(given) if isinstance(given, (list, tuple)) else
                    given) != expected:
                raise ValueError(
                    f'model.aux_head.{field}={given!r} does not match the '
                    f'model ({expected!r}); leave it out to fill it in')
        aux_head.setdefault('loss', copy.deepcopy(self.head.loss_module))
        aux_head.setdefault('cal_acc', not mixes_labels)
        self.aux_head = MODELS.build(aux_head)
        if self.aux_head.cal_acc:
            self.head.cal_acc = True  # logging only: the loss is unchanged
        self.eval_branches = eval_branches
        self.main_scores = OutputRecorder({MAIN: self.head})
        self._check_build()

    def _features(self, inputs: torch.Tensor
                  ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor,
                                                             ...]]:
        """The plain model's neck features and the branch features, from
        one backbone forward pass."""
        with self.aux_neck.record(self.backbone) as taps:
            feats = self.extract_feat(inputs)
        return feats, self.aux_neck(taps)

    def forward_logits(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Logits of all K classifiers, as ``predict`` scores them: the
        branches shallowest first, the main head last, each of shape
        (N, num_classes)."""
        feats, branch_feats = self._features(inputs)
        return self.aux_head(branch_feats) + [self.head(feats)]

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """The DKS objective; see :meth:`DKSAuxHead.loss`."""
        feats, branch_feats = self._features(inputs)
        with self.main_scores as scores:
            main_losses = self.head.loss(feats, data_samples)
        return self.aux_head.loss(branch_feats, data_samples, main_losses,
                                  scores[MAIN])

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with the main head (and score every branch when
        ``eval_branches`` is set)."""
        if not self.eval_branches:
            return super().predict(inputs, data_samples, **kwargs)
        feats, branch_feats = self._features(inputs)
        predictions = self.head.predict(feats, data_samples, **kwargs)
        branch_scores = [
            F.softmax(logits, dim=1)
            for logits in self.aux_head(branch_feats)
        ]
        for i, sample in enumerate(predictions):
            scores = [s[i] for s in branch_scores] + [sample.pred_score]
            sample.set_field(torch.stack(scores), 'branch_scores')
        return predictions

    @staticmethod
    def upgrade_state_dict(
            state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """A copy of ``state_dict`` with the keys of older mmdks versions
        renamed (loading does this itself; tools that compare keys before
        loading call it)."""
        state_dict = dict(state_dict)
        upgrade_aux_head_keys(state_dict, 'aux_head.')
        return state_dict

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Eval mode without gradients for a build-time check; every
        module's mode is restored after."""
        modes = {m: m.training for m in self.modules()}
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for m, mode in modes.items():
                m.training = mode

    def _probe_features(self):
        """The plain neck's features of the probe's backbone outputs (the
        outputs themselves without a neck)."""
        probe = probe_backbone(self.backbone, self.aux_neck.probe_size)
        if not self.with_neck:
            return probe.outputs
        return _run(
            'model.neck does not take the backbone outputs '
            f'{probe.output_shapes}', self.neck, probe.outputs)

    def _scored_classes(self) -> int:
        """The class count of a head that keeps none (MMPretrain's
        ``ClsHead`` on a backbone that classifies itself, as VGG,
        InceptionV3 and LeNet5 do; ``VigClsHead``): the width of the logits
        it returns for the probe's features, in eval mode."""
        name = type(self.head).__name__
        with self._evaluating():
            feats = self._probe_features()
            logits = _run(
                f'model.head ({name}) does not take the features '
                f'{_shapes(feats)}', self.head, feats)
        if not (isinstance(logits, torch.Tensor) and logits.dim() == 2):
            raise ValueError(
                f'model.head ({name}) keeps no num_classes and returns '
                f'{type(logits).__name__} rather than (N, num_classes) '
                'logits')
        return logits.shape[1]

    def _check_build(self) -> None:
        """Neck, heads and the DKS loss once on the backbone outputs of the
        probe (and the branches on dummy maps of their taps' shapes), in
        eval mode."""
        samples = [DataSample().set_gt_label(0)]
        param = next(self.backbone.parameters())
        with self._evaluating():
            feats = self._probe_features()
            with self.main_scores as scores:
                main_losses = _run(
                    f'model.head ({type(self.head).__name__}) does not '
                    f'take the features {_shapes(feats)} or cannot be '
                    'trained (check head.in_channels)',
                    self.head.loss, feats, samples)
            if MAIN not in scores:
                raise ValueError(
                    f'model.head ({type(self.head).__name__}): its '
                    'loss() does not call its forward, so DKS cannot '
                    'read the logits it scores')
            if not (isinstance(scores[MAIN], torch.Tensor)
                    and scores[MAIN].dim() == 2):
                raise ValueError(
                    f'model.head ({type(self.head).__name__}) scores '
                    f'{_shapes(scores[MAIN])} per sample, not one (N, '
                    'num_classes) logits tensor that the synergy term '
                    'can compare with the branches\' (e.g. '
                    "Conformer's two heads); DKS needs a head with one")
            branch_feats = [
                branch(param.new_zeros(1, *tap.shape))
                for branch, tap in zip(self.aux_neck.branches,
                                       self.aux_neck.taps)
            ]
            _run('model.aux_head does not run', self.aux_head.loss,
                 branch_feats, samples, main_losses, scores[MAIN])


def _check_head(head) -> None:
    """One line for heads DKS cannot drive."""
    name = type(head).__name__
    if head is None:
        raise ValueError('model.head is missing: DKS trains the model\'s own '
                         'classification head beside its branches')
    if isinstance(head, MultiLabelClsHead):
        raise ValueError(
            f'model.head ({name}) is multi-label: the synergy term matches '
            'softmax distributions over classes, which independent sigmoids '
            'are not')
    if isinstance(head, DeiTClsHead):
        raise ValueError(
            f'model.head ({name}): MMPretrain cannot train the distilled '
            'DeiT head (it only warns); train with VisionTransformerClsHead')
    if isinstance(head, LeViTClsHead) and head.distillation:
        raise ValueError(
            f'model.head ({name}): MMPretrain cannot train the distilled '
            'LeViT head (it raises at the first training step); set '
            'model.head.distillation=False')
    if not isinstance(head, ClsHead):
        raise ValueError(
            f'model.head ({name}) is not a single-label classification head '
            '(an MMPretrain ClsHead such as LinearClsHead)')


def _shapes(output):
    """Per-sample shapes of ``output``'s tensors, nested as it is, for a
    message."""
    if isinstance(output, torch.Tensor):
        return tuple(output.shape[1:])
    if isinstance(output, (tuple, list)):
        return [_shapes(o) for o in output]
    return type(output).__name__


def _run(failure: str, fn, *args):
    """``fn(*args)``, with an error that says which part failed."""
    try:
        return fn(*args)
    except Exception as e:
        raise ValueError(f'{failure}: {type(e).__name__}: {e}') from e
