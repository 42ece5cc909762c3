"""Let torch's weights-only loader read MMEngine's own checkpoints.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, and MMEngine
0.10.7 (resume, ``load_from``, ``tools/test.py``) calls it without the flag.
Its training checkpoints hold a message hub of ``HistoryBuffer`` objects
(numpy arrays and scalars inside), which that loader refuses. Rather than
turning the safe loader off, the exact globals such a checkpoint pickles are
allowlisted here, once, whenever mmdks is imported.
"""
import pickle
from typing import Any, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _history_buffer_method(owner: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` in a checkpoint.

    ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'min')``; allowlisting the real ``getattr``
    would let a pickle read any attribute of any allowlisted object, so only
    these lookups are served.
    """
    # The class table fills in on the first HistoryBuffer(): list the
    # built-in methods too.
    allowed = {'min', 'max', 'mean', 'current'
               } | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({owner!r}, {name!r}) in a checkpoint: only '
        'HistoryBuffer statistics methods are allowed')


def _numpy_globals() -> List[Union[type, Tuple[Any, str]]]:
    # numpy 2 pickles from ``numpy._core``; checkpoints written with numpy 1
    # name ``numpy.core``. Both resolve to the same objects.
    multiarray = np._core.multiarray if hasattr(np, '_core') \
        else np.core.multiarray
    pairs = []
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        pairs += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    # Unpickling a dtype also BUILDs an instance of its class
    # (numpy.dtypes.Float64DType, ...): allow the numeric ones.
    dtype_classes = [
        type(np.dtype(t)) for t in ('bool', 'int8', 'int16', 'int32', 'int64',
                                    'uint8', 'uint16', 'uint32', 'uint64',
                                    'float16', 'float32', 'float64')
    ]
    return pairs + [(np.ndarray, 'numpy.ndarray'),
                    (np.dtype, 'numpy.dtype')] + dtype_classes


CHECKPOINT_SAFE_GLOBALS: List[Union[type, Tuple[Any, str]]] = [
    (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
    (_history_buffer_method, 'builtins.getattr'),
] + _numpy_globals()


def register_checkpoint_safe_globals() -> None:
    """Allowlist :data:`CHECKPOINT_SAFE_GLOBALS` for ``torch.load``."""
    torch.serialization.add_safe_globals(CHECKPOINT_SAFE_GLOBALS)
