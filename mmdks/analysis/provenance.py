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


def run_provenance(root: str) -> Dict[str, Union[str, bool, dict]]:
    """The git commit of ``root`` (``'unknown'`` outside a git checkout),
    whether its tracked files had uncommitted changes, and the environment
    as MMPretrain's ``collect_env`` reports it.

    Args:
        root (str): The source tree the run used.

    Returns:
        dict: ``commit``, ``dirty`` and ``env`` (Python, PyTorch,
        TorchVision, OpenCV, MMEngine, MMCV and MMPreTrain versions, the
        platform, the compiler, CUDA and the GPUs). ``env['MMPreTrain']``
        is MMPretrain's version alone: ``collect_env`` appends the git hash
        of the current directory, which is not MMPretrain's. Its numpy seed
        is left out: it says nothing about the code.
    """
    import mmpretrain
    from mmpretrain.utils import collect_env
    env = collect_env()
    env.pop('numpy_random_seed', None)
    env['MMPreTrain'] = mmpretrain.__version__
    commit = _git(root, 'rev-parse', 'HEAD') or 'unknown'
    dirty = commit != 'unknown' and bool(
        _git(osp.abspath(root), 'status', '--porcelain',
             '--untracked-files=no'))
    return dict(commit=commit, dirty=dirty, env=env)
