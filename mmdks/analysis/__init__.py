from .provenance import run_provenance
from .study import latest_scalars, mean_std, paired_interval, val_history

__all__ = [
    'latest_scalars', 'mean_std', 'paired_interval', 'run_provenance',
    'val_history'
]
