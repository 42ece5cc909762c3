from .dks_head import DKSHead

__all__ = ['DKSHead']
