from .dks_curves import find_scalars_log, load_scalars, plot_dks_curves
from .tensorboard_log import (find_event_file, load_event_scalars,
                              load_run_scalars)

__all__ = [
    'find_event_file', 'find_scalars_log', 'load_event_scalars',
    'load_run_scalars', 'load_scalars', 'plot_dks_curves'
]
