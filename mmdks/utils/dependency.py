"""Check the OpenMMLab libraries mmdks runs on when it is imported, as
MMPretrain checks MMCV and MMEngine, with one line that says what to
install."""
import importlib
from typing import Dict, Tuple

# Import name -> (lowest supported version, first unsupported one); the
# requirements files give the same ranges.
VERSIONS: Dict[str, Tuple[str, str]] = {
    'mmengine': ('0.8.3', '1.0.0'),
    'mmcv': ('2.0.0', '2.4.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}


def install_hint(name: str, low: str, high: str) -> str:
    """The command that installs a supported version of ``name``."""
    if name == 'mmcv':
        # mmcv-lite ships the same `mmcv` package minus the compiled ops:
        # installing it over a full mmcv would break MMDetection and others.
        return (f'run `mim install "mmcv>={low},<{high}"` (full mmcv, with '
                'the compiled ops other OpenMMLab libraries need) or `pip '
                f'install "mmcv-lite>={low},<{high}"` (enough for mmdks)')
    return f'run `pip install "{name}>={low},<{high}"`'


def check_dependencies(
        versions: Dict[str, Tuple[str, str]] = VERSIONS) -> None:
    """Import each library of ``versions`` and check its version.

    Args:
        versions (dict): Import name to ``(lowest, first unsupported)``
            version, checked in order. Defaults to :data:`VERSIONS`.

    Raises:
        ImportError: With one line naming the library, the supported
            range, what was found and the install command.
    """
    from mmengine.utils import digit_version
    for name, (low, high) in versions.items():
        wanted = f'mmdks needs {name}>={low},<{high}'
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # the library is there, its import fails
                raise
            raise ImportError(f'{wanted}, which is not installed: '
                              f'{install_hint(name, low, high)}') from None
        found = digit_version(module.__version__)
        if not digit_version(low) <= found < digit_version(high):
            raise ImportError(f'{wanted}, found {module.__version__}: '
                              f'{install_hint(name, low, high)}')
