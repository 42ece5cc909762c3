import math
from typing import Optional, Union

import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf."""


def _scalar(value: Union[torch.Tensor, float]) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training when the loss becomes NaN or inf.

    MMEngine would go on: the optimizer steps on NaN gradients, every weight
    becomes NaN, and the run still ends with exit status 0. This raises
    :class:`NonFiniteLossError` naming the iteration and the loss terms
    instead, before a checkpoint of the broken weights is saved; those saved
    earlier are untouched. Every iteration is checked: MMEngine's
    ``RuntimeInfoHook`` has already read each logged loss back to the host,
    so no extra device synchronisation is added. ``tools/train.py`` adds
    this hook; with other scripts::

        custom_hooks = [dict(type='FiniteLossHook')]
    """

    # After the logger (BELOW_NORMAL) writes the iteration, before the
    # checkpoint hook (VERY_LOW) saves.
    priority = 'LOW'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs or math.isfinite(
                _scalar(outputs['loss'])):
            return
        terms = ', '.join(f'{key}={_scalar(value):g}'
                          for key, value in outputs.items()
                          if 'loss' in key)
        raise NonFiniteLossError(
            f'the training loss is not finite at epoch {runner.epoch + 1}, '
            f'iteration {runner.iter + 1} ({terms}): training diverged; '
            'lower optim_wrapper.optimizer.lr or the loss weights, check '
            'the data, and start again from an earlier checkpoint')
