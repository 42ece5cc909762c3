"""mmdks: Deeply-supervised Knowledge Synergy for MMPretrain."""
from .utils import (check_dependencies, register_checkpoint_safe_globals,
                    register_model_index)
from .version import __version__

# A missing or unsupported MMCV, MMEngine or MMPretrain fails here, with
# the command that fixes it, rather than somewhere inside their imports.
check_dependencies()

# MMEngine 0.10.7 loads its own checkpoints (resume, load_from) with torch's
# default loader, which is weights-only since torch 2.6.
register_checkpoint_safe_globals()

from . import models  # noqa: E402,F401  registers the DKS modules
from . import evaluation  # noqa: E402,F401  registers BranchAccuracy
from . import engine  # noqa: E402,F401  registers SynergyWarmupHook

# `mmpretrain.list_models('dks*')` and `get_model(name)` know mmdks models.
register_model_index()

__all__ = ['__version__', 'register_checkpoint_safe_globals']
