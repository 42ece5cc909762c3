from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class DKSHead(LinearClsHead):
    """Linear classifiers of all DKS branches and the synergy loss.

    The main classifier is exactly MMPretrain's :class:`LinearClsHead`
    (``self.fc``, same shape and init), so its weights map 1:1 to a plain
    model; ``aux_fcs`` holds one linear classifier per auxiliary branch and
    is listed in :attr:`auxiliary_modules`.

    Training loss: ``sum_k ce_weights[k] * CE(z_k, y) + synergy_loss(z)``.
    Log keys: ``branch_{k}/loss_ce`` and ``main/loss_ce``, ``loss_synergy``,
    and with ``cal_acc`` ``{name}/accuracy_top-{k}`` per classifier.

    Args:
        num_classes (int): Number of categories.
        in_channels (int): Channels of the main (last) feature.
        aux_in_channels (Sequence[int]): Channels of each auxiliary branch's
            feature, shallowest first. Filled in from the neck by
            ``DKSClassifier``.
        ce_weights (Sequence[float], optional): Weight of each classifier's
            cross-entropy, main last. Defaults to all ones.
        synergy_loss (dict, optional): Config of the synergy loss; ``None``
            disables it (plain deep supervision). Defaults to
            ``dict(type='SynergyLoss')``.
        **kwargs: ``loss``, ``topk``, ``cal_acc``, ``init_cfg`` of
            :class:`LinearClsHead`. ``cal_acc`` defaults to True here, so
            every branch's training accuracy is logged; it is skipped for
            soft (mixup/cutmix) targets.
    """

    auxiliary_modules = ('aux_fcs', )

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 aux_in_channels: Sequence[int] = (),
                 ce_weights: Optional[Sequence[float]] = None,
                 synergy_loss: Optional[dict] = dict(type='SynergyLoss'),
                 **kwargs) -> None:
        kwargs.setdefault('cal_acc', True)
        super().__init__(num_classes, in_channels, **kwargs)
        num_classifiers = len(aux_in_channels) + 1
        if ce_weights is None:
            ce_weights = [1.0] * num_classifiers
        if len(ce_weights) != num_classifiers:
            raise ValueError(
                f'head.ce_weights={list(ce_weights)} must have '
                f'{num_classifiers} entries: one per auxiliary branch, then '
                'the main classifier')
        if any(not w >= 0 for w in ce_weights):
            raise ValueError(
                f'head.ce_weights={list(ce_weights)} must all be >= 0')
        self.ce_weights = [float(w) for w in ce_weights]
        self.aux_fcs = nn.ModuleList(
            nn.Linear(c, num_classes) for c in aux_in_channels)
        self.branch_names = [
            f'branch_{k + 1}' for k in range(num_classifiers - 1)
        ] + ['main']

        self.synergy_loss = None
        if synergy_loss is not None:
            self.synergy_loss = MODELS.build(synergy_loss)
            if num_classifiers < 2 and self.synergy_loss.alpha > 0:
                raise ValueError(
                    'head.synergy_loss needs at least one auxiliary branch '
                    '(K >= 2); add neck.branches or set synergy_loss=None')

    def forward_all(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits of every classifier whose feature is given.

        Args:
            feats (tuple[Tensor]): Pooled features, shallowest first, main
                last, each of shape (N, C_k).

        Returns:
            Tensor: Logits of shape (len(feats), N, num_classes).
        """
        aux = [fc(x) for fc, x in zip(self.aux_fcs, feats[:-1])]
        return torch.stack(aux + [self(feats)])

    def loss(self, feats: Tuple[torch.Tensor, ...],
             data_samples: List[DataSample], **kwargs) -> dict:
        """Cross-entropy of every classifier plus the synergy term.

        Args:
            feats (tuple[Tensor]): One pooled feature per classifier, main
                last, each of shape (N, C_k).
            data_samples (List[DataSample]): Annotations of the batch.

        Returns:
            dict[str, Tensor]: The loss terms and training accuracies.
        """
        if len(feats) != len(self.branch_names):
            raise ValueError(
                f'DKSHead.loss expects {len(self.branch_names)} features '
                f'(one per classifier), got {len(feats)}')
        logits = self.forward_all(feats)
        if 'gt_score' in data_samples[0]:
            target = torch.stack([i.gt_score for i in data_samples])
        else:
            target = torch.cat([i.gt_label for i in data_samples])

        losses = dict()
        for name, weight, score in zip(self.branch_names, self.ce_weights,
                                       logits):
            losses[f'{name}/loss_ce'] = weight * self.loss_module(
                score, target, avg_factor=score.size(0), **kwargs)
            if self.cal_acc and target.ndim == 1:
                acc = Accuracy.calculate(score, target, topk=self.topk)
                losses.update({
                    f'{name}/accuracy_top-{k}': a
                    for k, a in zip(self.topk, acc)
                })
        if self.synergy_loss is not None:
            losses['loss_synergy'] = self.synergy_loss(logits)
        return losses

    def predict(
        self,
        feats: Tuple[torch.Tensor, ...],
        data_samples: Optional[List[Optional[DataSample]]] = None
    ) -> List[DataSample]:
        """Predict with the main classifier.

        When the neck also ran the branches (per-branch evaluation), every
        sample additionally gets ``branch_scores`` of shape (K, num_classes):
        each classifier's softmax, shallowest first, main last.
        """
        logits = self.forward_all(feats)
        predictions = self._get_predictions(logits[-1], data_samples)
        if len(feats) > 1:
            branch_scores = F.softmax(logits, dim=-1).transpose(0, 1)
            for sample, scores in zip(predictions, branch_scores):
                sample.set_field(scores.detach(), 'branch_scores')
        return predictions
