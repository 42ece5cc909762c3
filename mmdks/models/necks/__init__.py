from .dks_neck import DKSNeck

__all__ = ['DKSNeck']
