"""mmdks: Deeply-supervised Knowledge Synergy for MMPretrain."""
from .utils import (check_dependencies, register_checkpoint_safe_globals,
                    register_model_index)
from .version import __version__

# A missing or unsupported MMCV, MMEngine or MMPretrain fails here, with
# the command that fixes it, rather than somewhere inside their imports.
check_dependencies()

# Checkpoints are loaded weights-only; MMEngine's own training checkpoints
# (resume, load_from) need a few of its globals allowlisted for that.
register_checkpoint_safe_globals()

from . import models  # noqa: E402,F401  registers the DKS modules
from . import evaluation  # noqa: E402,F401  registers BranchAccuracy
from . import engine  # noqa: E402,F401  registers the hooks
from .apis import register_checkpoint_loader  # noqa: E402

# Every checkpoint MMEngine opens (load_from, resume, test, Pretrained
# init_cfg; local, URL or model zoo) goes through mmdks's safe loader.
register_checkpoint_loader()

# `mmpretrain.list_models('dks*')` and `get_model(name)` know mmdks models.
register_model_index()

__all__ = [
    '__version__', 'register_checkpoint_loader',
    'register_checkpoint_safe_globals'
]
