from .checkpoint import check_checkpoint_fits, check_finite, load_exactly
from .checkpoint_loader import (CheckpointError, auto_resume_checkpoint,
                                load_checkpoint_safely,
                                register_checkpoint_loader)
from .onnx import export_onnx
from .plain_config import plain_model_config
from .strip import strip_checkpoint, strip_state_dict

__all__ = [
    'CheckpointError', 'auto_resume_checkpoint', 'check_checkpoint_fits',
    'check_finite', 'export_onnx', 'load_checkpoint_safely', 'load_exactly',
    'plain_model_config', 'register_checkpoint_loader', 'strip_checkpoint',
    'strip_state_dict'
]
