from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from mmdks.models.losses import SynergyLoss


@HOOKS.register_module()
class SynergyWarmupHook(Hook):
    """Ramp the weight of every :class:`SynergyLoss` with ``warmup_iters``
    linearly from 0 to its ``alpha``.

    The factor is set before each training iteration from the runner's
    iteration counted in optimizer steps (``accumulative_counts``
    micro-batches make one step), so the ramp resumes where it stopped and
    the model never reads a counter back from the device::

        model = dict(aux_head=dict(synergy_loss=dict(warmup_iters=1000)))
        custom_hooks = [dict(type='SynergyWarmupHook')]
    """

    priority = 'NORMAL'

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        accumulation = getattr(runner.optim_wrapper, '_accumulative_counts',
                               1)
        step = runner.iter // accumulation
        for module in model.modules():
            if isinstance(module, SynergyLoss) and module.warmup_iters and (
                    not module.warmup_driven
                    or step <= module.warmup_iters):
                module.set_warmup_factor(min(1.0, step / module.warmup_iters))
