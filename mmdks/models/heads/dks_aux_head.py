from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class DKSAuxHead(BaseModule):
    """Linear classifiers of the DKS branches, and the DKS objective.

    One linear classifier per auxiliary branch (``fcs``) beside the model's
    own, unchanged head. :meth:`loss` takes the logits of all K classifiers
    (branches shallowest first, the main head last) and returns::

        branch_{k}/loss_ce, main/loss_ce   ce_weights[k] * CE(z_k, y)
        loss_synergy                       the synergy term
        {name}/accuracy_top-{k}            training accuracy (``cal_acc``)

    Every classifier's CE uses the main head's loss module, so its settings
    (label smoothing, soft mixup targets) apply to the branches too.

    Args:
        num_classes (int): Number of categories; filled in from the main
            head by :class:`DKSClassifier`.
        in_channels (Sequence[int]): Feature channels of each branch,
            shallowest first; filled in from the neck by
            :class:`DKSClassifier`.
        ce_weights (Sequence[float], optional): CE weight of each
            classifier, main last. Defaults to all ones.
        synergy_loss (dict, optional): Config of the synergy loss (``type``
            defaults to ``'SynergyLoss'``); ``None`` or ``alpha=0`` gives
            plain deep supervision. Defaults to ``dict(type='SynergyLoss')``.
        topk (Sequence[int]): Training accuracies to log. Defaults to (1, ).
        cal_acc (bool): Whether to log every classifier's training accuracy
            (hard labels only). MMPretrain's heads default to ``False``; here
            it is ``True``, as the branches' accuracies are what DKS is
            judged by while it trains. ``False`` saves 7 operators per
            classifier and step, which a GPU step bound by the host pays
            for. Defaults to True.
        init_cfg (dict): Initialization config. Defaults to
            ``LinearClsHead``'s.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 ce_weights: Optional[Sequence[float]] = None,
                 synergy_loss: Optional[dict] = dict(type='SynergyLoss'),
                 topk: Sequence[int] = (1, ),
                 cal_acc: bool = True,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(
                f'aux_head.num_classes={num_classes!r} must be a positive int')
        if not in_channels:
            raise ValueError('aux_head.in_channels is empty: DKS needs at '
                             'least one branch in aux_neck.branches')
        num_classifiers = len(in_channels) + 1
        if ce_weights is None:
            ce_weights = [1.0] * num_classifiers
        if len(ce_weights) != num_classifiers:
            raise ValueError(
                f'aux_head.ce_weights={list(ce_weights)} must have '
                f'{num_classifiers} entries: one per branch, then the main '
                'classifier')
        if not all(isinstance(w, (int, float)) and w >= 0
                   for w in ce_weights):
            raise ValueError(
                f'aux_head.ce_weights={list(ce_weights)} must all be >= 0')
        if cal_acc and not (topk and all(
                isinstance(k, int) and 0 < k <= num_classes for k in topk)):
            raise ValueError(
                f'aux_head.topk={topk!r} must be ints in [1, num_classes='
                f'{num_classes}], or set aux_head.cal_acc=False to log no '
                'training accuracy')
        self.num_classes = num_classes
        self.ce_weights = [float(w) for w in ce_weights]
        self.topk = tuple(topk)
        self.cal_acc = cal_acc
        self.names = [f'branch_{k + 1}'
                      for k in range(num_classifiers - 1)] + ['main']
        self.fcs = nn.ModuleList(
            nn.Linear(c, num_classes) for c in in_channels)
        # A partial dict such as dict(alpha=0.) means a SynergyLoss.
        self.synergy_loss = None if synergy_loss is None \
            else MODELS.build(dict(dict(type='SynergyLoss'), **synergy_loss))

    def forward(self, feats: Tuple[torch.Tensor, ...]) -> List[torch.Tensor]:
        """Logits of the branch classifiers.

        Args:
            feats (tuple[Tensor]): Pooled branch features, shallowest first,
                each of shape (N, C_k).

        Returns:
            list[Tensor]: Logits, each of shape (N, num_classes).
        """
        return [fc(x) for fc, x in zip(self.fcs, feats)]

    def loss(self, logits: Sequence[torch.Tensor],
             data_samples: List[DataSample], ce_loss: nn.Module) -> dict:
        """The DKS objective.

        Args:
            logits (Sequence[Tensor]): Logits of all K classifiers, branches
                shallowest first, the main head last, each (N, num_classes).
            data_samples (List[DataSample]): Annotations of the batch.
            ce_loss (nn.Module): The main head's classification loss.

        Returns:
            dict[str, Tensor]: Loss terms and training accuracies.
        """
        if 'gt_score' in data_samples[0]:
            target = torch.stack([i.gt_score for i in data_samples])
        else:
            target = torch.cat([i.gt_label for i in data_samples])
        losses = dict()
        for name, weight, score in zip(self.names, self.ce_weights, logits):
            losses[f'{name}/loss_ce'] = weight * ce_loss(
                score, target, avg_factor=score.size(0))
            # Accuracy is meaningless for soft targets.
            if self.cal_acc and target.ndim == 1:
                accs = Accuracy.calculate(score, target, topk=self.topk)
                losses.update({
                    f'{name}/accuracy_top-{k}': acc[0]
                    for k, acc in zip(self.topk, accs)
                })
        if self.synergy_loss is not None:
            losses['loss_synergy'] = self.synergy_loss(torch.stack(logits))
        return losses
