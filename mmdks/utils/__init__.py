from .cli import USAGE_ERRORS, add_error_arguments, one_line_errors
from .fileio import atomic_outputs
from .runner_cfg import (init_cpu_distributed, set_dataloader_defaults,
                         set_work_dir)
from .safe_globals import (CHECKPOINT_SAFE_GLOBALS,
                           register_checkpoint_safe_globals)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'USAGE_ERRORS', 'add_error_arguments',
    'atomic_outputs', 'init_cpu_distributed', 'one_line_errors',
    'register_checkpoint_safe_globals', 'set_dataloader_defaults',
    'set_work_dir'
]
