from .study import latest_scalars, mean_std, paired_interval, val_history

__all__ = ['latest_scalars', 'mean_std', 'paired_interval', 'val_history']
