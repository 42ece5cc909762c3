from .cli import USAGE_ERRORS, add_error_arguments, one_line_errors
from .fileio import atomic_outputs
from .runner_cfg import (init_cpu_distributed, set_dataloader_defaults,
                         set_work_dir)
from .safe_globals import (CHECKPOINT_SAFE_GLOBALS,
                           register_checkpoint_safe_globals)
from .scalar_log import (find_scalars_log, latest_scalars, load_scalars,
                         val_history)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'USAGE_ERRORS', 'add_error_arguments',
    'atomic_outputs', 'find_scalars_log', 'init_cpu_distributed',
    'latest_scalars', 'load_scalars', 'one_line_errors',
    'register_checkpoint_safe_globals', 'set_dataloader_defaults',
    'set_work_dir', 'val_history'
]
