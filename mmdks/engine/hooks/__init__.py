from .synergy_warmup_hook import SynergyWarmupHook

__all__ = ['SynergyWarmupHook']
