from .finite_loss_hook import FiniteLossHook, NonFiniteLossError
from .synergy_warmup_hook import SynergyWarmupHook

__all__ = ['FiniteLossHook', 'NonFiniteLossError', 'SynergyWarmupHook']
