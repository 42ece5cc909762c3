import math
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import ModuleList
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.registry import MODELS

from .stage_branch import BaseBranch
from .taps import Tap

REDUCTIONS = ('cls', 'mean')


def _has_cls_token(backbone: nn.Module) -> bool:
    """Whether the backbone (or the model a wrapper holds, as timm's in
    TIMMBackbone) puts a class token first."""
    owners = (backbone, getattr(backbone, 'timm_model', None))
    return any(getattr(o, 'cls_token', None) is not None for o in owners)


def _square_grid(tap: Tap) -> bool:
    """Whether the tapped tokens are a square patch grid and nothing else:
    at the square probe, a class token (and any other extra token) makes
    their count no square. XCiT's and CaiT-like backbones own a class
    token but add it only after the blocks a branch taps."""
    count = tap.shape[0] if tap.kind == 'tokens' else 0
    return count > 0 and math.isqrt(count)**2 == count


@MODELS.register_module()
class TokenBranch(BaseBranch):
    """An auxiliary branch for token (N, L, C) or vector (N, C) taps:
    transformer blocks (ViT, DeiT, Swin, ...), class tokens, pooled
    features.

    Tokens go through ``num_layers`` transformer encoder layers of their
    width and are reduced to the class token (``reduce='cls'``) or their
    mean (``'mean'``). The feature is then normalised and, with
    ``mid_channels``, projected by a linear-activation layer.

    Args:
        backbone (nn.Module): The built backbone; read, not stored.
        tap (Tap): The resolved tap, tokens or a vector.
        in_channels (int, optional): Checked against the tap when given.
        num_layers (int): Transformer encoder layers on (N, L, C) tokens;
            must be 0 for (N, C) vectors, which have nothing to attend to.
            Defaults to 0.
        num_heads (int, optional): Attention heads of those layers.
            Defaults to one per 64 channels, as ViT's.
        reduce (str, optional): ``'cls'`` or ``'mean'``. Defaults to
            ``'cls'`` where the backbone has a class token and the tapped
            tokens carry it (their count at the square probe is no square
            grid), else ``'mean'``.
        mid_channels (int, optional): Width of a linear-activation
            projection after the norm. Defaults to None (no projection).
        norm_cfg (dict): Norm config. Defaults to LN.
        act_cfg (dict): Activation of the projection. Defaults to GELU.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            truncated-normal linears, as in MMPretrain's ViTs.
    """

    accepts = ('tokens', 'vector')

    def __init__(self,
                 backbone: nn.Module,
                 tap: Tap,
                 in_channels: Optional[int] = None,
                 num_layers: int = 0,
                 num_heads: Optional[int] = None,
                 reduce: Optional[str] = None,
                 mid_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='LN'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[dict] = dict(
                     type='TruncNormal', layer='Linear', std=.02)) -> None:
        super().__init__(tap, in_channels, init_cfg)
        if num_layers and tap.kind == 'vector':
            raise ValueError(
                f'branch.num_layers={num_layers} needs tokens, but '
                f'{tap.describe()} gives one vector per image: tap a module '
                'that outputs all tokens, or set num_layers=0')
        if num_layers and num_heads is None:
            num_heads = max(1, self.in_channels // 64)
        if num_layers and self.in_channels % num_heads:
            raise ValueError(
                f'branch.num_heads={num_heads} does not divide the '
                f'{self.in_channels} channels of {tap.describe()}; set '
                'num_heads')
        if reduce is None:
            reduce = 'cls' if _has_cls_token(backbone) and \
                not _square_grid(tap) else 'mean'
        if reduce not in REDUCTIONS:
            raise ValueError(
                f'branch.reduce={reduce!r} must be one of {REDUCTIONS}')
        self.reduce = reduce
        self.layers = ModuleList(
            TransformerEncoderLayer(
                embed_dims=self.in_channels,
                num_heads=num_heads,
                feedforward_channels=4 * self.in_channels,
                norm_cfg=norm_cfg) for _ in range(num_layers))
        self.norm = build_norm_layer(norm_cfg, self.in_channels)[1]
        if mid_channels is None:
            self.proj = nn.Identity()
            self.out_channels = self.in_channels
        else:
            self.proj = nn.Sequential(
                nn.Linear(self.in_channels, mid_channels),
                build_activation_layer(act_cfg))
            self.out_channels = mid_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (N, in_channels) vector or (N, L, in_channels) tokens to the
        branch feature of shape (N, out_channels)."""
        if x.dim() == 3:
            for layer in self.layers:
                x = layer(x)
            x = x[:, 0] if self.reduce == 'cls' else x.mean(dim=1)
        return self.proj(self.norm(x))
