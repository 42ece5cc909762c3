"""What a run ran on, recorded beside its results so that reports can say
which code and libraries produced each number."""
import os.path as osp
import subprocess
from typing import Dict, Union


def _git(root: str, *args: str) -> str:
    try:
        result = subprocess.run(['git', *args], cwd=root, text=True,
                                capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ''
    return result.stdout.strip() if result.returncode == 0 else ''


def run_provenance(root: str) -> Dict[str, Union[str, bool]]:
    """The git commit of ``root`` (``'unknown'`` outside a git checkout),
    whether its tracked files had uncommitted changes, and the versions of
    torch, mmpretrain and mmengine this process imports.

    Args:
        root (str): The source tree the run used.

    Returns:
        dict: ``commit``, ``dirty``, ``torch``, ``mmpretrain``,
        ``mmengine``.
    """
    import mmengine
    import mmpretrain
    import torch
    commit = _git(root, 'rev-parse', 'HEAD') or 'unknown'
    dirty = commit != 'unknown' and bool(
        _git(osp.abspath(root), 'status', '--porcelain',
             '--untracked-files=no'))
    return dict(commit=commit, dirty=dirty, torch=torch.__version__,
                mmpretrain=mmpretrain.__version__,
                mmengine=mmengine.__version__)
