from .checkpoint import check_checkpoint_fits
from .strip import (CheckpointError, export_onnx, load_checkpoint_safely,
                    plain_model_config, strip_checkpoint, strip_state_dict)

__all__ = [
    'CheckpointError', 'check_checkpoint_fits', 'export_onnx',
    'load_checkpoint_safely',
    'plain_model_config', 'strip_checkpoint', 'strip_state_dict'
]
