from .runner_cfg import (exit_unless_checkpoint_fits, init_cpu_distributed,
                         set_dataloader_defaults, set_work_dir)
from .safe_globals import (CHECKPOINT_SAFE_GLOBALS,
                           register_checkpoint_safe_globals)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'exit_unless_checkpoint_fits',
    'init_cpu_distributed',
    'register_checkpoint_safe_globals',
    'set_dataloader_defaults', 'set_work_dir'
]
