"""What every conv branch shares: its default init and the check of the
stages it rebuilds."""
from typing import Sequence

# Kaiming convs and unit norms, as MMPretrain's ResNet initialises itself; a
# pretrained backbone's init_cfg would give new branch layers nothing.
CONV_BRANCH_INIT = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
]


def rebuilt_stages(from_stage: int, num_blocks: Sequence[int],
                   num_stages: int) -> range:
    """The stages a branch from ``from_stage`` rebuilds, after checking
    ``from_stage`` and that ``num_blocks`` gives one positive count each."""
    if not 0 <= from_stage < num_stages - 1:
        raise ValueError(
            f'branch.from_stage={from_stage} must name a stage before '
            f'the last one (0..{num_stages - 2})')
    stages = range(from_stage + 1, num_stages)
    if (not isinstance(num_blocks, Sequence) or len(num_blocks) != len(stages)
            or not all(isinstance(n, int) and n > 0 for n in num_blocks)):
        raise ValueError(
            f'branch.num_blocks={num_blocks!r} must list {len(stages)} '
            f'positive block counts, one per stage {list(stages)}')
    return stages
