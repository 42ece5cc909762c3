from .dks_aux_head import DKSAuxHead, upgrade_aux_head_keys

__all__ = ['DKSAuxHead', 'upgrade_aux_head_keys']
