"""What every DKS branch shares: the tap it reads, the kinds of input it
takes, its default init and the check of the stages it rebuilds."""
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule

from .taps import Tap

# Kaiming convs and unit norms, as MMPretrain's ResNet initialises itself; a
# pretrained backbone's init_cfg would give new branch layers nothing.
CONV_BRANCH_INIT = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
]
# The branch type that takes each kind of input, for error messages.
_TAKEN_BY = {'map': 'ConvBranch', 'tokens': 'TokenBranch',
             'vector': 'TokenBranch'}


class BaseBranch(BaseModule):
    """An auxiliary branch: it reads one tap of the backbone and returns a
    pooled feature of shape (N, out_channels) for one auxiliary classifier.

    Subclasses declare the kinds of tap output they take in ``accepts``
    (``'map'``, ``'tokens'``, ``'vector'``; see :class:`Tap`) and set
    ``out_channels``.

    Args:
        tap (Tap): The resolved tap (filled in by :class:`DKSNeck`).
        in_channels (int, optional): Channels of the tap; checked against
            the probed backbone when given.
        init_cfg (dict | list[dict], optional): Initialization config.
    """

    accepts: Tuple[str, ...] = ()

    def __init__(self,
                 tap: Tap,
                 in_channels: Optional[int] = None,
                 init_cfg: Union[dict, List[dict], None] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if tap.kind not in self.accepts:
            raise ValueError(
                f'{type(self).__name__} takes {" or ".join(self.accepts)}, '
                f'but {tap.describe()} is not; use {_TAKEN_BY[tap.kind]} '
                'or tap another module')
        if in_channels is not None and in_channels != tap.channels:
            raise ValueError(
                f'branch.in_channels={in_channels} does not match '
                f'{tap.describe()}, which has {tap.channels} channels; leave '
                'in_channels out to read it from the backbone')
        self.tap = tap.name
        self.in_channels = tap.channels
        self.out_channels: int = 0


def rebuilt_stages(from_stage: int, num_blocks: Sequence[int],
                   num_stages: int) -> range:
    """The stages a branch from ``from_stage`` rebuilds, after checking
    ``from_stage`` and that ``num_blocks`` gives one positive count each."""
    if not 0 <= from_stage < num_stages - 1:
        raise ValueError(
            f'the tapped stage {from_stage} must come before the last one '
            f'(0..{num_stages - 2})')
    stages = range(from_stage + 1, num_stages)
    if (not isinstance(num_blocks, Sequence) or len(num_blocks) != len(stages)
            or not all(isinstance(n, int) and n > 0 for n in num_blocks)):
        raise ValueError(
            f'branch.num_blocks={num_blocks!r} must list {len(stages)} '
            f'positive block counts, one per stage {list(stages)}')
    return stages


def stage_of(tap: Tap, branch: str) -> int:
    """The stage whose end ``tap`` is, for branches that rebuild the
    remaining stages."""
    if tap.stage is None or tap.kind != 'map':
        raise ValueError(
            f'{branch} continues the backbone from the end of a stage, but '
            f'{tap.describe()} is not a stage end; tap one (or use '
            'from_stage) or use ConvBranch')
    return tap.stage
