import math
import re
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModule, ModuleList
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmdks.structures import classifier_names
from ..utils import OutputRecorder

# mmdks < 0.2 kept one bare nn.Linear per branch in ``fcs``.
_OLD_FC = re.compile(r'fcs\.(\d+)\.(weight|bias)$')


def upgrade_aux_head_keys(state_dict: dict, prefix: str) -> None:
    """Rename, in place, what mmdks 0.1 saved under ``prefix``: the branch
    classifiers ``fcs.<k>.*`` are now ``heads.<k>.fc.*`` (same tensors, same
    order), and the synergy loss's warm-up counter is gone (the warm-up hook
    reads the runner's iteration)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        found = _OLD_FC.fullmatch(key[len(prefix):])
        if found:
            state_dict[f'{prefix}heads.{found.group(1)}.fc.'
                       f'{found.group(2)}'] = state_dict.pop(key)
    state_dict.pop(f'{prefix}synergy_loss.trained_iters', None)


@MODELS.register_module()
class DKSAuxHead(BaseModule):
    """The classifiers of the DKS branches, and the DKS objective.

    One classifier head per branch (``branch_head``, by default MMPretrain's
    ``LinearClsHead``) beside the model's own, unchanged head. Every head
    computes its loss with its own ``loss()`` (MMPretrain's target handling:
    hard labels or Mixup/CutMix scores), and :meth:`loss` returns::

        branch_{k}/loss, main/loss     ce_weights[k] * that head's loss
        {name}/accuracy_top-{k}        training accuracy (``cal_acc``)
        loss_synergy                   the synergy term of all K logits

    Args:
        num_classes (int): Number of categories; filled in from the main
            head by :class:`DKSClassifier`.
        in_channels (Sequence[int]): Feature channels of each branch,
            shallowest first; filled in from the neck.
        loss (dict): Loss config of the branch heads; filled in with the
            main head's (so label smoothing applies to every classifier).
        branch_head (dict): Config of each branch head, without
            ``num_classes``, ``in_channels``, ``loss``, ``topk`` and
            ``cal_acc``. Defaults to ``dict(type='LinearClsHead')``.
        ce_weights (Sequence[float], optional): Weight of each classifier's
            loss, main last. Defaults to all ones.
        synergy_loss (dict, optional): Config of the synergy loss (``type``
            defaults to ``'SynergyLoss'``); ``None`` or ``alpha=0`` gives
            plain deep supervision. Defaults to ``dict(type='SynergyLoss')``.
        topk (Sequence[int]): Training accuracies to log. Defaults to (1, ).
        cal_acc (bool): Whether to log every classifier's training accuracy
            (hard labels only); filled in by :class:`DKSClassifier`: on,
            unless the recipe mixes labels (Mixup/CutMix). ``False`` saves 7
            operators per classifier and step, which a GPU step bound by
            the host pays for.
        init_cfg (dict, optional): Initialization config. The branch heads
            initialise themselves (``LinearClsHead``: normal, std 0.01).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 branch_head: dict = dict(type='LinearClsHead'),
                 ce_weights: Optional[Sequence[float]] = None,
                 synergy_loss: Optional[dict] = dict(type='SynergyLoss'),
                 topk: Sequence[int] = (1, ),
                 cal_acc: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
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
        if not all(isinstance(w, (int, float)) and 0 <= w < math.inf
                   for w in ce_weights):
            raise ValueError(f'aux_head.ce_weights={list(ce_weights)} must '
                             'all be finite numbers >= 0')
        if cal_acc and not (topk and all(
                isinstance(k, int) and 0 < k <= num_classes for k in topk)):
            raise ValueError(
                f'aux_head.topk={topk!r} must be ints in [1, num_classes='
                f'{num_classes}], or set aux_head.cal_acc=False to log no '
                'training accuracy')
        self.num_classes = num_classes
        self.ce_weights = [float(w) for w in ce_weights]
        self.cal_acc = cal_acc
        self.names = classifier_names(num_classifiers)
        self.heads = ModuleList(
            MODELS.build(
                dict(
                    branch_head,
                    num_classes=num_classes,
                    in_channels=channels,
                    loss=loss,
                    topk=tuple(topk),
                    cal_acc=cal_acc)) for channels in in_channels)
        # A partial dict such as dict(alpha=0.) means a SynergyLoss.
        self.synergy_loss = None if synergy_loss is None \
            else MODELS.build(dict(dict(type='SynergyLoss'), **synergy_loss))
        self.scores = OutputRecorder(dict(zip(self.names, self.heads)))

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Logits of the branch classifiers.

        Args:
            feats (Sequence[Tensor]): Branch features, shallowest first,
                each of shape (N, C_k).

        Returns:
            list[Tensor]: Logits, each of shape (N, num_classes).
        """
        return [head((x, )) for head, x in zip(self.heads, feats)]

    def loss(self, feats: Sequence[torch.Tensor],
             data_samples: List[DataSample], main_losses: Dict[str,
                                                               torch.Tensor],
             main_logits: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The DKS objective.

        Args:
            feats (Sequence[Tensor]): Branch features, shallowest first.
            data_samples (List[DataSample]): Annotations of the batch.
            main_losses (dict[str, Tensor]): What the main head's ``loss()``
                returned.
            main_logits (Tensor): The logits the main head scored there,
                of shape (N, num_classes).

        Returns:
            dict[str, Tensor]: Loss terms and training accuracies.
        """
        with self.scores as logits:
            head_losses = [
                head.loss((x, ), data_samples)
                for head, x in zip(self.heads, feats)
            ]
        head_losses.append(main_losses)
        losses = dict()
        for name, weight, terms in zip(self.names, self.ce_weights,
                                       head_losses):
            for key, value in terms.items():
                if 'loss' in key and weight != 1:
                    value = value * weight
                losses[f'{name}/{key}'] = value
        if self.synergy_loss is not None:
            losses['loss_synergy'] = self.synergy_loss(
                torch.stack([logits[name]
                             for name in self.names[:-1]] + [main_logits]))
        return losses

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        upgrade_aux_head_keys(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
