from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule, ModuleList
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.registry import MODELS

from .backbone_probe import probe_branch_shapes, resolve_in_channels


@MODELS.register_module()
class TokenBranch(BaseModule):
    """An auxiliary branch for transformer backbones (ViT, DeiT, ...).

    The stage output is either a vector per image, (N, C) (``out_type``
    ``'cls_token'`` or ``'avg_featmap'``: what MMPretrain's ViT heads need,
    so a DKS ViT keeps it), or all tokens, (N, L, C) (``out_type='raw'``).
    Tokens go through ``num_layers`` transformer encoder layers of the
    backbone's width and are reduced to the class token (or their mean when
    the backbone has none). The feature is then normalised and, with
    ``mid_channels``, projected by a linear-activation layer.

    Args:
        backbone (nn.Module): The built backbone; read, not stored. It must
            have ``out_indices`` with ``from_stage`` before the last entry.
        from_stage (int): Index of the backbone layer the branch forks from.
        in_channels (int, optional): Embedding width of that layer; checked
            against the backbone when given.
        num_layers (int): Transformer encoder layers on (N, L, C) tokens;
            must be 0 for (N, C) vectors, which have nothing to attend to.
            Defaults to 0.
        num_heads (int, optional): Attention heads of those layers. Defaults
            to the backbone's.
        mid_channels (int, optional): Width of a linear-activation
            projection after the norm. Defaults to None (no projection).
        norm_cfg (dict): Norm config. Defaults to LN.
        act_cfg (dict): Activation of the projection. Defaults to GELU.
        init_cfg (dict | list[dict]): Initialization config. Defaults to
            truncated-normal linears, as in MMPretrain's ViTs.
    """

    def __init__(self,
                 backbone: nn.Module,
                 from_stage: int,
                 in_channels: Optional[int] = None,
                 num_layers: int = 0,
                 num_heads: Optional[int] = None,
                 mid_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='LN'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[dict] = dict(
                     type='TruncNormal', layer='Linear', std=.02)) -> None:
        super().__init__(init_cfg=init_cfg)
        in_shape, _ = probe_branch_shapes(backbone, from_stage)
        if len(in_shape) not in (1, 2):
            raise ValueError(
                f'TokenBranch needs (C, ) vectors or (L, C) tokens, but '
                f'backbone stage {from_stage} outputs {in_shape}; use '
                'ConvBranch for (C, H, W) maps')
        if num_layers and len(in_shape) == 1:
            raise ValueError(
                f'branch.num_layers={num_layers} needs all tokens, but '
                f'backbone stage {from_stage} outputs one {in_shape} vector '
                "per image: set the backbone's out_type='raw' or "
                'num_layers=0')
        self.from_stage = from_stage
        self.in_channels = resolve_in_channels(in_channels, in_shape[-1],
                                               from_stage)
        if num_layers and num_heads is None:
            num_heads = backbone.layers[0].attn.num_heads
        self.layers = ModuleList(
            TransformerEncoderLayer(
                embed_dims=self.in_channels,
                num_heads=num_heads,
                feedforward_channels=4 * self.in_channels,
                norm_cfg=norm_cfg) for _ in range(num_layers))
        # Backbones with a class token put it first.
        self.use_cls_token = getattr(backbone, 'cls_token', None) is not None
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
            x = x[:, 0] if self.use_cls_token else x.mean(dim=1)
        return self.proj(self.norm(x))
