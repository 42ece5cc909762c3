from .provenance import run_provenance
from .study import mean_std, paired_interval

__all__ = ['mean_std', 'paired_interval', 'run_provenance']
