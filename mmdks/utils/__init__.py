from .dependency import check_dependencies
from .fileio import atomic_outputs
from .model_index import register_model_index
from .runner_cfg import (init_cpu_distributed, set_dataloader_defaults,
                         set_tta, set_visualization, set_work_dir)
from .safe_globals import (CHECKPOINT_SAFE_GLOBALS,
                           register_checkpoint_safe_globals)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'atomic_outputs', 'check_dependencies',
    'init_cpu_distributed', 'register_checkpoint_safe_globals',
    'register_model_index', 'set_dataloader_defaults', 'set_tta',
    'set_visualization', 'set_work_dir'
]
