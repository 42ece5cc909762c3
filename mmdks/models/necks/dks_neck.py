from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from mmpretrain.registry import MODELS

from ..utils import resnet_stage_channels


@MODELS.register_module()
class DKSNeck(BaseModule):
    """The auxiliary branches of DKS, and the main path's pooling.

    The backbone returns the stages listed in its ``out_indices``; the last
    of them feeds the main classifier through global average pooling, as
    MMPretrain's ``GlobalAveragePooling`` neck does, and every branch takes
    one earlier stage and ends in its own pooled feature vector.

    Auxiliary parts are listed in :attr:`auxiliary_modules`, so tools can
    drop them without guessing (see ``mmdks.apis.strip_auxiliary``).

    Args:
        backbone (nn.Module): The built backbone; read to size the branches,
            not stored. It must have ``out_indices``.
        branches (Sequence[dict]): One config per branch, shallowest first.
            Each needs ``from_stage``; ``type`` defaults to
            ``'ResStageBranch'``, other keys go to the branch.
        init_cfg (dict, optional): Initialization config.
    """

    auxiliary_modules = ('branches', )

    def __init__(self,
                 backbone: nn.Module,
                 branches: Sequence[dict],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        out_indices = getattr(backbone, 'out_indices', None)
        if out_indices is None:
            raise TypeError(f'DKSNeck needs a backbone with out_indices; '
                            f'{type(backbone).__name__} has none')
        self.out_indices: List[int] = list(out_indices)
        main_stage = self.out_indices[-1]
        if self.out_indices != sorted(self.out_indices):
            raise ValueError(
                f'backbone.out_indices={tuple(out_indices)} must be '
                'increasing: the last one feeds the main classifier')
        if not isinstance(branches, Sequence) or not branches:
            raise ValueError(
                'neck.branches must be a non-empty list of branch configs '
                "such as dict(from_stage=2, num_blocks=[3])")

        self.branches = ModuleList()
        out_channels = []
        for i, cfg in enumerate(branches):
            if not isinstance(cfg, dict) or 'from_stage' not in cfg:
                raise ValueError(
                    f'neck.branches[{i}]={cfg!r} must be a dict with '
                    'from_stage')
            stage = cfg['from_stage']
            if stage not in self.out_indices[:-1]:
                raise ValueError(
                    f'neck.branches[{i}].from_stage={stage} is not among '
                    f'the backbone stages that feed branches '
                    f'{tuple(self.out_indices[:-1])}: add it to '
                    f'backbone.out_indices={tuple(out_indices)} (the last '
                    f'index, {main_stage}, is the main path)')
            branch = MODELS.build(
                dict(type='ResStageBranch', **cfg),
                default_args=dict(backbone=backbone))
            self.branches.append(branch)
            out_channels.append(branch.out_channels)
        out_channels.append(resnet_stage_channels(backbone, main_stage))
        self.out_channels: Tuple[int, ...] = tuple(out_channels)
        self._branch_inputs = [
            self.out_indices.index(b.from_stage) for b in self.branches
        ]
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self,
                inputs: Tuple[torch.Tensor, ...],
                with_branches: bool = True) -> Tuple[torch.Tensor, ...]:
        """Pool the main path and, if asked, run the branches.

        Args:
            inputs (tuple[Tensor]): The backbone's outputs for
                ``out_indices``, each of shape (N, C_i, H_i, W_i).
            with_branches (bool): Run the auxiliary branches. Defaults to
                True.

        Returns:
            tuple[Tensor]: Pooled features of shape (N, C_k), one per
            classifier, shallowest first and the main one last; only the
            main one when ``with_branches`` is False.
        """
        feats = [inputs[i] for i in self._branch_inputs] if with_branches \
            else []
        outs = [branch(x) for branch, x in zip(self.branches, feats)]
        outs.append(inputs[-1])
        return tuple(self.gap(x).flatten(1) for x in outs)
