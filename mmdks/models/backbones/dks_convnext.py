from typing import Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones import ConvNeXt
from mmpretrain.registry import MODELS


@MODELS.register_module()
class DKSConvNeXt(ConvNeXt):
    """MMPretrain's ConvNeXt, returning raw maps at its branch stages.

    ConvNeXt builds a norm layer for every entry of ``out_indices`` (and,
    by default, pools before it), so asking it for branch stages would add
    backbone weights the plain model lacks and hand the branches pooled
    vectors. Here only the last entry, the plain model's output, gets
    ConvNeXt's norm (and pooling); the earlier ones return their stage's
    (N, C, H, W) map for :class:`ConvBranch`. With a single out index this
    is ConvNeXt exactly, and its state dict is ConvNeXt's: the stripped
    checkpoint loads into ``type='ConvNeXt'``.

    Args:
        out_indices (int | Sequence[int]): Branch stages, then the main
            stage last. Defaults to -1.
        **kwargs: The other arguments of :class:`ConvNeXt`.
    """

    plain_type = 'ConvNeXt'

    def __init__(self, out_indices: Union[int, Sequence[int]] = -1,
                 **kwargs) -> None:
        indices = [out_indices] if isinstance(out_indices, int) \
            else list(out_indices)
        super().__init__(out_indices=indices[-1:], **kwargs)
        self.out_indices = [i + self.num_stages if i < 0 else i
                            for i in indices]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        main = self.out_indices[-1]
        for i, stage in enumerate(self.stages):
            x = stage(self.downsample_layers[i](x))
            if i == main:  # as ConvNeXt does
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    gap = x.mean([-2, -1], keepdim=True)
                    outs.append(norm(gap).flatten(1))
                else:
                    outs.append(norm(x))
            elif i in self.out_indices:
                outs.append(x)
        return tuple(outs)
