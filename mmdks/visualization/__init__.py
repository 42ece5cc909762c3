from .dks_curves import find_scalars_log, load_scalars, plot_dks_curves

__all__ = ['find_scalars_log', 'load_scalars', 'plot_dks_curves']
