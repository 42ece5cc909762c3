from .dks_official import convert_dks_official

__all__ = ['convert_dks_official']
