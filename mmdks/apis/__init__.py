from .strip import (CheckpointError, export_onnx, load_checkpoint_safely,
                    plain_model_config, strip_checkpoint, strip_state_dict)

__all__ = [
    'CheckpointError', 'export_onnx', 'load_checkpoint_safely',
    'plain_model_config', 'strip_checkpoint', 'strip_state_dict'
]
