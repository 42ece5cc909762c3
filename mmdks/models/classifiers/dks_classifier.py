from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class DKSClassifier(ImageClassifier):
    """Image classifier trained with Deeply-supervised Knowledge Synergy.

    The backbone, neck and head are MMPretrain's own and stay exactly as in
    the plain model; the backbone only returns more stages
    (``out_indices``), of which the last is the plain model's output. DKS
    adds two training-only parts, named in :attr:`auxiliary_modules`:
    ``aux_neck`` (:class:`DKSNeck`, the branches) and ``aux_head``
    (:class:`DKSAuxHead`, their classifiers and the DKS loss). Dropping them
    leaves a plain :class:`ImageClassifier` (``tools/strip_heads.py``).

    ``aux_neck`` is built with the backbone at hand (branches copy its block
    type and norm); ``aux_head`` gets its ``in_channels`` from the neck and
    its ``num_classes`` from the main head.

    Training (``mode='loss'``) runs every branch. ``predict`` and ``tensor``
    run only the plain model's path, unless ``eval_branches`` is set: then
    ``predict`` also attaches ``branch_scores`` of shape (K, num_classes) to
    each sample (every classifier's softmax, branches first, main last).

    Args:
        backbone (dict): Backbone config with the branch stages and, last,
            the main stage in ``out_indices``.
        aux_neck (dict): :class:`DKSNeck` config.
        aux_head (dict): :class:`DKSAuxHead` config.
        neck (dict, optional): The plain model's neck.
        head (dict): The plain model's head.
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
        if self.head is None or not hasattr(self.head, 'loss_module'):
            raise ValueError('DKSClassifier needs the model head of an '
                             'MMPretrain classifier (a ClsHead with a loss)')
        self.aux_neck = MODELS.build(
            aux_neck, default_args=dict(backbone=self.backbone))
        aux_head = dict(aux_head)
        expected_fields = (('in_channels', list(self.aux_neck.out_channels)),
                           ('num_classes', self.head.num_classes))
        for field, expected in expected_fields:
            given = aux_head.setdefault(field, expected)
            if (list(given) if isinstance(given, Sequence) else given) != \
                    expected:
                raise ValueError(
                    f'model.aux_head.{field}={given!r} does not match the '
                    f'model ({expected!r}); leave it out to fill it in')
        self.aux_head = MODELS.build(aux_head)
        self.eval_branches = eval_branches

    def _main_feats(self, x: Tuple[torch.Tensor, ...], stage: str = 'neck'):
        """The plain model's features, from all of the backbone outputs."""
        x = x[-1:]  # what the backbone returns with only the main stage
        if stage == 'backbone':
            return x
        if self.with_neck:
            x = self.neck(x)
        if stage == 'neck':
            return x
        return self.head.pre_logits(x)

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck'):
        """Features of the plain model's path; see
        :meth:`ImageClassifier.extract_feat`."""
        assert stage in ('backbone', 'neck', 'pre_logits'), \
            f'Invalid output stage "{stage}"'
        return self._main_feats(self.backbone(inputs), stage)

    def forward_logits(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Logits of all K classifiers: the branches shallowest first, the
        main head last, each of shape (N, num_classes)."""
        x = self.backbone(inputs)
        logits = self.aux_head(self.aux_neck(x))
        logits.append(self.head(self._main_feats(x)))
        return logits

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """The DKS objective; see :meth:`DKSAuxHead.loss`."""
        return self.aux_head.loss(self.forward_logits(inputs), data_samples,
                                  self.head.loss_module)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with the main head (and score every branch when
        ``eval_branches`` is set)."""
        x = self.backbone(inputs)
        predictions = self.head.predict(self._main_feats(x), data_samples,
                                        **kwargs)
        if self.eval_branches:
            aux_scores = [
                F.softmax(logit, dim=1)
                for logit in self.aux_head(self.aux_neck(x))
            ]
            for i, sample in enumerate(predictions):
                scores = [s[i] for s in aux_scores] + [sample.pred_score]
                sample.set_field(torch.stack(scores), 'branch_scores')
        return predictions
