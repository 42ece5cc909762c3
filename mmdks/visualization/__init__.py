from .dks_curves import plot_dks_curves

__all__ = ['plot_dks_curves']
