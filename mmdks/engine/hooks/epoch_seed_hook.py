import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seed Python's, NumPy's and PyTorch's global random generators at the
    start of every training epoch from the run's seed and the epoch.

    MMEngine seeds them once, when the runner is built, and a checkpoint
    does not hold their state, so a resumed run would draw other random
    augmentations (in the main process, ``num_workers=0``) and dropout masks
    than the run it continues. Seeded from ``(seed, epoch)``, an epoch draws
    the same numbers whether the run was resumed before it or not, and
    whatever validation drew in between. ``tools/train.py`` adds this hook;
    with other scripts::

        custom_hooks = [dict(type='EpochSeedHook')]

    The seed is ``runner.seed``: ``randomness.seed`` (plus the rank with
    ``diff_rank_seed``), or the one MMEngine drew, which a resume restores.
    Worker processes of a dataloader seed their own generators when they
    start (MMEngine's ``worker_init_fn``): see the README on resuming.
    """

    priority = 'NORMAL'

    def before_train_epoch(self, runner) -> None:
        seed = int(
            np.random.SeedSequence([runner.seed,
                                    runner.epoch]).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # every device's generator
