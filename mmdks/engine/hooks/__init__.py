from .epoch_seed_hook import EpochSeedHook
from .finite_loss_hook import FiniteLossHook, NonFiniteLossError
from .synergy_warmup_hook import SynergyWarmupHook

__all__ = [
    'EpochSeedHook', 'FiniteLossHook', 'NonFiniteLossError',
    'SynergyWarmupHook'
]
