from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from mmpretrain.registry import MODELS

from ..utils import is_resnet_family, probe_out_shapes


def default_branch_type(backbone: nn.Module, stage_position: int) -> str:
    """The branch type for a backbone stage when the config names none.

    A backbone may declare its own (``dks_branch_type``, as mmdks's CIFAR
    WRN does); ResNet-family backbones are continued with their own blocks;
    any other backbone gets :class:`ConvBranch` for (C, H, W) maps and
    :class:`TokenBranch` for tokens or vectors.
    """
    declared = getattr(backbone, 'dks_branch_type', None)
    if declared is not None:
        return declared
    if is_resnet_family(backbone):
        return 'ResStageBranch'
    shape = probe_out_shapes(backbone)[stage_position]
    return 'ConvBranch' if len(shape) == 3 else 'TokenBranch'


@MODELS.register_module()
class DKSNeck(BaseModule):
    """The auxiliary branches of DKS.

    The backbone returns the stages in its ``out_indices``: the last one is
    the main path (left to the model's own neck and head), every earlier
    one can feed branches. Each branch turns its stage output into a pooled
    feature vector for one auxiliary classifier.

    Args:
        backbone (nn.Module): The built backbone; read to build the branches,
            not stored. It must have ``out_indices``.
        branches (Sequence[dict]): One config per branch, shallowest first.
            Each needs ``from_stage`` (a backbone stage index); ``type``
            defaults to :func:`default_branch_type`'s choice; other keys go
            to the branch.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 backbone: nn.Module,
                 branches: Sequence[dict],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        out_indices = getattr(backbone, 'out_indices', None)
        if out_indices is None:
            raise TypeError(f'DKSNeck needs a backbone with out_indices; '
                            f'{type(backbone).__name__} has none')
        out_indices = list(out_indices)
        if out_indices != sorted(set(out_indices)):
            raise ValueError(
                f'backbone.out_indices={tuple(out_indices)} must be strictly '
                'increasing: the last one feeds the main classifier')
        if not isinstance(branches, Sequence) or not branches:
            raise ValueError(
                'aux_neck.branches must be a non-empty list of branch '
                'configs such as dict(from_stage=2, num_blocks=[3])')

        self.branches = ModuleList()
        self.in_indices = []
        for i, cfg in enumerate(branches):
            if not isinstance(cfg, dict) or 'from_stage' not in cfg:
                raise ValueError(f'aux_neck.branches[{i}]={cfg!r} must be a '
                                 'dict with from_stage')
            stage = cfg['from_stage']
            if stage not in out_indices[:-1]:
                raise ValueError(
                    f'aux_neck.branches[{i}].from_stage={stage} is not a '
                    f'branch stage {tuple(out_indices[:-1])} of '
                    f'backbone.out_indices={tuple(out_indices)}: add it to '
                    f'out_indices before the main stage {out_indices[-1]}')
            position = out_indices.index(stage)
            cfg = dict(cfg)
            cfg.setdefault('type', default_branch_type(backbone, position))
            try:
                branch = MODELS.build(
                    cfg, default_args=dict(backbone=backbone))
            except (TypeError, ValueError) as e:
                # Say which branch: the builder's message does not.
                raise type(e)(f'aux_neck.branches[{i}] ({cfg["type"]}): '
                              f'{e}') from e
            self.branches.append(branch)
            self.in_indices.append(position)
        self.out_channels: Tuple[int, ...] = tuple(
            b.out_channels for b in self.branches)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """Run every branch.

        Args:
            inputs (Sequence[Tensor]): The backbone's outputs for
                ``out_indices``.

        Returns:
            tuple[Tensor]: One pooled feature of shape (N, out_channels[k])
            per branch, shallowest first.
        """
        return tuple(
            branch(inputs[i])
            for branch, i in zip(self.branches, self.in_indices))
