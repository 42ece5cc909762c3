from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from mmpretrain.registry import MODELS

from ..utils import (OutputRecorder, Tap, is_resnet_family, probe_backbone,
                     probe_size_of, resolve_tap, tap_input)


def default_branch_type(backbone: nn.Module, tap: Tap) -> str:
    """The branch type for a tap when the config names none.

    A backbone may declare its own (``dks_branch_type``, as mmdks's CIFAR
    WRN does); a ResNet-family backbone is continued with its own blocks
    from the end of a stage; any other map gets :class:`ConvBranch`, and
    tokens or vectors get :class:`TokenBranch`.
    """
    declared = getattr(backbone, 'dks_branch_type', None)
    if declared is not None:
        return declared
    if tap.kind == 'map':
        if is_resnet_family(backbone) and tap.stage is not None:
            return 'ResStageBranch'
        return 'ConvBranch'
    return 'TokenBranch'


@MODELS.register_module()
class DKSNeck(BaseModule):
    """The auxiliary branches of DKS, reading taps on an unmodified
    backbone.

    Each branch names the backbone module whose output it reads, as
    ``backbone.named_modules()`` spells it (``tap='layer3'``,
    ``tap='stages.1'``; ``tools/analysis_tools/list_taps.py`` lists them),
    or a stage by index (``from_stage=2``: the backbone's ``res_layers``,
    ``stages``, ``layers`` or timm ``feature_info``). Forward hooks keep
    those outputs during the backbone's one normal forward pass (inside
    :meth:`record`), so the backbone stays exactly the plain model's.

    Shapes are read off one probe of the backbone at its input size
    (:func:`probe_backbone`); every tap is checked there: it must exist,
    run once, come before the backbone's output and give something its
    branch takes (tuple outputs need ``tap_index``; 4-D maps are NCHW or
    NHWC, told apart at the square probe or set by ``layout``).

    Args:
        backbone (nn.Module): The built backbone; hooked, not stored.
        branches (Sequence[dict]): One config per branch, shallowest first:
            ``tap`` or ``from_stage``, optionally ``tap_index`` and
            ``layout``, a ``type`` (default: :func:`default_branch_type`)
            and the branch's own arguments.
        probe_size (int | tuple[int, int], optional): Input size of the
            probe. Defaults to the backbone's own input size, else 224.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 backbone: nn.Module,
                 branches: Sequence[dict],
                 probe_size: Union[int, Tuple[int, int], None] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(branches, (str, dict)) or not isinstance(
                branches, Sequence) or not branches:
            raise ValueError(
                'aux_neck.branches must be a non-empty list of branch '
                "configs such as dict(tap='layer3')")
        self.probe_size = probe_size_of(backbone, probe_size)
        probe = probe_backbone(backbone, self.probe_size)
        self.input_shape = probe.input_shape
        self.branches = ModuleList()
        self.taps = []
        for i, cfg in enumerate(branches):
            where = f'aux_neck.branches[{i}]'
            if not isinstance(cfg, dict):
                raise ValueError(f'{where}={cfg!r} must be a dict with tap '
                                 'or from_stage')
            cfg = dict(cfg)
            tap = resolve_tap(backbone, probe, cfg, where)
            cfg.setdefault('type', default_branch_type(backbone, tap))
            if not (isinstance(cfg['type'], str)
                    and cfg['type'] in MODELS) and not isinstance(
                        cfg['type'], type):
                raise ValueError(
                    f'{where}.type={cfg["type"]!r} is not a registered '
                    'branch type (ConvBranch, ResStageBranch, TokenBranch, '
                    'WRNStageBranch)')
            try:
                branch = MODELS.build(
                    cfg, default_args=dict(backbone=backbone, tap=tap))
            except (TypeError, ValueError) as e:
                # Say which branch: the builder's message does not.
                raise type(e)(f'{where} ({cfg["type"]}): {e}') from e
            self.branches.append(branch)
            self.taps.append(tap)
        modules = dict(backbone.named_modules())
        self.recorder = OutputRecorder(
            {tap.name: modules[tap.name]
             for tap in self.taps})
        self.out_channels: Tuple[int, ...] = tuple(
            b.out_channels for b in self.branches)

    def record(self, backbone: nn.Module) -> OutputRecorder:
        """``with neck.record(backbone) as taps: backbone(x)`` keeps the
        tapped outputs of that forward pass in ``taps``.

        Args:
            backbone (nn.Module): The backbone the taps name modules of, as
                it is now (see :meth:`OutputRecorder.follow`).
        """
        self.recorder.follow(backbone)
        return self.recorder

    def forward(self, taps: Mapping[str, Any]) -> Tuple[torch.Tensor, ...]:
        """Run every branch.

        Args:
            taps (Mapping[str, Any]): The tapped modules' outputs of one
                backbone forward pass (:meth:`record`).

        Returns:
            tuple[Tensor]: One pooled feature of shape (N, out_channels[k])
            per branch, shallowest first.
        """
        inputs = [tap_input(taps[tap.name], tap) for tap in self.taps]
        if self.training and torch.is_grad_enabled():
            self._check_gradient(inputs)
        return tuple(
            branch(x) for branch, x in zip(self.branches, inputs))

    def _check_gradient(self, inputs: Sequence[torch.Tensor]) -> None:
        """A tap of trainable modules whose output carries no gradient is
        detached from the backbone: its branch would train only itself."""
        for i, (tap, x) in enumerate(zip(self.taps, inputs)):
            module = self.recorder.modules[tap.name]
            if not x.requires_grad and any(
                    p.requires_grad for p in module.parameters()):
                raise RuntimeError(
                    f'aux_neck.branches[{i}]: tap {tap.name!r} has trainable '
                    'parameters but its output carries no gradient in '
                    'training (the backbone runs it under no_grad or inside '
                    "a custom autograd Function, as RevViT's reversible "
                    'backprop does), so its branch cannot train the '
                    'backbone; tap a module outside that part, or run the '
                    'backbone with plain autograd')
