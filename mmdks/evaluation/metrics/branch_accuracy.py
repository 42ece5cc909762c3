from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from mmdks.structures import ENSEMBLE, classifier_names


@METRICS.register_module()
class BranchAccuracy(BaseMetric):
    """Top-k accuracy of every DKS classifier and of their ensemble.

    Reads ``branch_scores`` (K, num_classes) from each prediction, which
    :class:`~mmdks.models.DKSClassifier` attaches when built with
    ``eval_branches=True``: the softmax of the K-1 branches (shallowest
    first) and of the main head (last). The ensemble averages the K
    probability vectors. Keys are ``{prefix}/branch_{k}_top{n}``,
    ``{prefix}/main_top{n}`` and ``{prefix}/ensemble_top{n}``, in percent.

    Use it beside MMPretrain's ``Accuracy`` (prefix ``accuracy``)::

        model = dict(eval_branches=True)
        val_evaluator = [
            dict(type='Accuracy', topk=(1, 5)),
            dict(type='BranchAccuracy', topk=(1, 5)),
        ]

    Args:
        topk (int | Sequence[int]): The k of each top-k accuracy.
            Defaults to 1.
        collect_device (str): Device to gather results on in distributed
            evaluation, ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric keys. Defaults to
            ``'branch'``.
    """

    default_prefix: Optional[str] = 'branch'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = 1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        if not self.topk or any(not isinstance(k, int) or k < 1
                                for k in self.topk):
            raise ValueError(f'topk must be positive integers, got {topk!r}')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep, per sample, the top-k class indices of every classifier
        and of the ensemble (not the full scores, which for ImageNet would
        cost K x 1000 floats a sample), and the label.

        Args:
            data_batch: The batch from the dataloader (unused).
            data_samples (Sequence[dict]): The model's predictions.
        """
        maxk = max(self.topk)
        for sample in data_samples:
            if 'branch_scores' not in sample:
                raise KeyError(
                    'BranchAccuracy needs the per-branch scores of a '
                    'DKSClassifier: set model.eval_branches=True (e.g. '
                    '--cfg-options model.eval_branches=True)')
            scores = sample['branch_scores'].detach().float().cpu()
            if scores.dim() != 2 or scores.size(1) < maxk:
                raise ValueError(
                    'branch_scores must be (num_classifiers, num_classes) '
                    f'with num_classes >= max(topk)={maxk}, got shape '
                    f'{tuple(scores.shape)}')
            scores = torch.cat([scores, scores.mean(0, keepdim=True)])
            self.results.append(
                dict(
                    topk_labels=scores.topk(maxk, dim=1).indices,
                    gt_label=int(sample['gt_label'].reshape(-1)[0])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Top-k accuracy (%) of each classifier and of the ensemble.

        Args:
            results (list[dict]): What :meth:`process` kept, from all
                ranks.

        Returns:
            dict: Metric name (without the prefix) to accuracy.
        """
        num_rows = {r['topk_labels'].size(0) for r in results}
        if len(num_rows) != 1:
            raise ValueError('samples have branch_scores for different '
                             f'numbers of classifiers: {sorted(num_rows)}')
        topk_labels = torch.stack([r['topk_labels'] for r in results])
        labels = torch.tensor([r['gt_label'] for r in results])
        # (N, K + 1, maxk): is the label the j-th guess of classifier i?
        hits = topk_labels == labels.view(-1, 1, 1)
        metrics = {}
        names = classifier_names(hits.size(1) - 1) + (ENSEMBLE, )
        for i, name in enumerate(names):
            for k in self.topk:
                correct = hits[:, i, :k].any(dim=1).float()
                metrics[f'{name}_top{k}'] = correct.mean().item() * 100
        return metrics
