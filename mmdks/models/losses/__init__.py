from .synergy_loss import PAIR_MODES, SynergyLoss, pair_mask

__all__ = ['PAIR_MODES', 'SynergyLoss', 'pair_mask']
