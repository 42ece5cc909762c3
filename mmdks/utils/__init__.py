from .cli import (USAGE_ERRORS, add_error_arguments, one_line_errors,
                  refuse_existing)
from .dependency import check_dependencies
from .fileio import atomic_outputs, write_checkpoint
from .model_index import register_model_index
from .runner_cfg import (init_cpu_distributed, set_dataloader_defaults,
                         set_tta, set_visualization, set_work_dir)
from .safe_globals import (CHECKPOINT_SAFE_GLOBALS,
                           register_checkpoint_safe_globals)
from .scalar_log import (latest_scalars, load_event_scalars, load_run_scalars,
                         load_scalars, resumed_from, session_logs,
                         stitch_sessions, val_history)

__all__ = [
    'CHECKPOINT_SAFE_GLOBALS', 'USAGE_ERRORS', 'add_error_arguments',
    'atomic_outputs', 'check_dependencies', 'init_cpu_distributed',
    'latest_scalars', 'load_event_scalars', 'load_run_scalars',
    'load_scalars', 'one_line_errors',
    'refuse_existing', 'register_checkpoint_safe_globals',
    'register_model_index',
    'resumed_from', 'session_logs', 'set_dataloader_defaults', 'set_tta',
    'set_visualization', 'set_work_dir', 'stitch_sessions', 'val_history',
    'write_checkpoint'
]
