from .dks_aux_head import DKSAuxHead

__all__ = ['DKSAuxHead']
