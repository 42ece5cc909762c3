from .checkpoint import (CheckpointError, check_checkpoint_fits,
                         load_checkpoint_safely)
from .onnx import export_onnx
from .plain_config import plain_model_config
from .strip import strip_checkpoint, strip_state_dict

__all__ = [
    'CheckpointError', 'check_checkpoint_fits', 'export_onnx',
    'load_checkpoint_safely', 'plain_model_config', 'strip_checkpoint',
    'strip_state_dict'
]
