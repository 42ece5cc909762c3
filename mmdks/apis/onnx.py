"""Exporting a plain model to ONNX and checking it with onnxruntime."""
from typing import Tuple

import numpy as np
import torch
from mmengine.config import Config

from mmdks.models.utils import input_channels

ONNX_TOLERANCE = 1e-4


def input_shape_of(cfg: Config) -> Tuple[int, int]:
    """``(H, W)`` the test pipeline feeds the model: its last crop size,
    else its last resize scale."""
    shape = None
    for transform in cfg.test_dataloader.dataset.pipeline:
        size = transform.get('crop_size', transform.get('scale'))
        if size is not None:
            shape = size
    if shape is None:
        raise ValueError('cannot tell the input size from the test pipeline '
                         '(no crop_size or scale): pass --shape H W')
    # MMPretrain sizes are (w, h).
    return (shape, shape) if isinstance(shape, int) else (shape[1], shape[0])


def export_onnx(model: torch.nn.Module, path: str,
                shape: Tuple[int, int]) -> float:
    """Export ``model`` (``mode='tensor'``: preprocessed images in, logits
    out) to ONNX with a dynamic batch size and check it with onnxruntime.

    Returns:
        float: The largest absolute logit difference between onnxruntime
        and PyTorch on a random batch of 3 (the export traced a batch of 2).

    Raises:
        ValueError: If the difference exceeds ``ONNX_TOLERANCE`` or is not
            finite (NaN logits never pass).
    """
    import onnxruntime

    model.eval()
    channels = input_channels(model)  # 1 for the grey Fashion-MNIST models
    # The dynamo exporter needs onnxscript; TorchScript export needs nothing.
    torch.onnx.export(
        model, (torch.randn(2, channels, *shape), ),
        path,
        dynamo=False,
        input_names=['input'],
        output_names=['logits'],
        dynamic_axes={
            'input': {
                0: 'batch'
            },
            'logits': {
                0: 'batch'
            }
        },
        opset_version=17)
    inputs = torch.randn(3, channels, *shape)
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    logits = session.run(None, {'input': inputs.numpy()})[0]
    with torch.no_grad():
        expected = model(inputs).numpy()
    diff = float(np.abs(logits - expected).max())
    # Written so that NaN (non-finite weights) fails too.
    if not diff <= ONNX_TOLERANCE:
        raise ValueError(f'ONNX logits differ from PyTorch by {diff:.3g} '
                         f'(tolerance {ONNX_TOLERANCE}); nothing was written')
    return diff
