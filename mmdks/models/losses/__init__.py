from .pairwise_kl import PAIR_MODES, Pairs, PairwiseKL, pair_mask
from .synergy_loss import SynergyLoss

__all__ = ['PAIR_MODES', 'Pairs', 'PairwiseKL', 'SynergyLoss', 'pair_mask']
