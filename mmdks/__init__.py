"""mmdks: Deeply-supervised Knowledge Synergy for MMPretrain."""
from .utils import register_checkpoint_safe_globals
from .version import __version__

# MMEngine 0.10.7 loads its own checkpoints (resume, load_from) with torch's
# default loader, which is weights-only since torch 2.6.
register_checkpoint_safe_globals()

from . import models  # noqa: E402,F401  registers the DKS modules
from . import evaluation  # noqa: E402,F401  registers BranchAccuracy
from . import engine  # noqa: E402,F401  registers SynergyWarmupHook

__all__ = ['__version__', 'register_checkpoint_safe_globals']
