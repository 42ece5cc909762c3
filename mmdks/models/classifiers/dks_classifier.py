from typing import List, Optional, Tuple

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


@MODELS.register_module()
class DKSClassifier(ImageClassifier):
    """Image classifier trained with Deeply-supervised Knowledge Synergy.

    An :class:`ImageClassifier` whose neck (:class:`DKSNeck`) adds auxiliary
    branches and whose head (:class:`DKSHead`) adds their classifiers and
    the synergy loss. The neck is built with the backbone at hand, so the
    branches copy its block type and norm, and the head's
    ``aux_in_channels`` are filled in from the neck.

    Training (``mode='loss'``) runs every branch. ``predict`` and ``tensor``
    run only the main path, as the deployed model does, unless
    ``eval_branches`` is set: then ``predict`` runs the branches too and
    attaches each classifier's scores (``branch_scores``) for per-branch
    evaluation.

    Args:
        backbone (dict): Backbone config; must produce the stages the
            branches fork from (``out_indices``), the main stage last.
        neck (dict): :class:`DKSNeck` config.
        head (dict): :class:`DKSHead` config.
        eval_branches (bool): Run the branches in ``predict``. Defaults to
            False.
        **kwargs: ``pretrained``, ``train_cfg``, ``data_preprocessor`` and
            ``init_cfg`` of :class:`ImageClassifier`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 eval_branches: bool = False,
                 **kwargs) -> None:
        super().__init__(backbone, neck=None, head=None, **kwargs)
        self.neck = MODELS.build(
            neck, default_args=dict(backbone=self.backbone))
        channels = self.neck.out_channels
        head = dict(head)
        for field, expected in (('in_channels', channels[-1]),
                                ('aux_in_channels', list(channels[:-1]))):
            given = head.setdefault(field, expected)
            if (list(given) if isinstance(given, tuple) else given) != expected:
                raise ValueError(
                    f'model.head.{field}={given!r} does not match the '
                    f'features the neck produces; set it to {expected!r} or '
                    'leave it out')
        self.head = MODELS.build(head)
        self._check_num_classes()
        self.eval_branches = eval_branches

    def _check_num_classes(self) -> None:
        # Batch augments (mixup/cutmix) one-hot the labels with the
        # preprocessor's num_classes: a mismatch would surface as a shape
        # error inside the loss.
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, 'batch_augments', None) is None:
            return
        if preprocessor.num_classes not in (None, self.head.num_classes):
            raise ValueError(
                f'model.head.num_classes={self.head.num_classes} differs '
                'from data_preprocessor.num_classes='
                f'{preprocessor.num_classes} used by the batch augments; set '
                'both to the number of classes of the dataset')

    def extract_feat(self,
                     inputs: torch.Tensor,
                     stage: str = 'neck',
                     with_branches: bool = False):
        """Extract features; see :meth:`ImageClassifier.extract_feat`.

        Args:
            inputs (Tensor): A batch of images of shape (N, C, H, W).
            stage (str): ``'backbone'``, ``'neck'`` or ``'pre_logits'``.
            with_branches (bool): Also run the auxiliary branches (for the
                ``'neck'`` stage). Defaults to False.
        """
        assert stage in ('backbone', 'neck', 'pre_logits'), \
            f'Invalid output stage "{stage}"'
        x = self.backbone(inputs)
        if stage == 'backbone':
            return x
        x = self.neck(x, with_branches=with_branches)
        if stage == 'neck':
            return x
        return self.head.pre_logits(x)

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """Losses of every classifier; see :meth:`DKSHead.loss`."""
        feats = self.extract_feat(inputs, with_branches=True)
        return self.head.loss(feats, data_samples)

    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Predict with the main classifier (and the branches' scores when
        ``eval_branches`` is set)."""
        feats = self.extract_feat(inputs, with_branches=self.eval_branches)
        return self.head.predict(feats, data_samples, **kwargs)

    def auxiliary_prefixes(self) -> Tuple[str, ...]:
        """State-dict prefixes of every auxiliary (training-only) part.

        Collected from each sub-module's ``auxiliary_modules`` declaration;
        dropping these leaves a plain :class:`ImageClassifier`.
        """
        return tuple(f'{name}.{child}' if name else child
                     for name, module in self.named_modules()
                     for child in getattr(module, 'auxiliary_modules', ()))
