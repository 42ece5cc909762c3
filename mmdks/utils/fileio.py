"""Writing files all or nothing."""
import contextlib
import glob
import io
import os
import os.path as osp
import tempfile
from typing import Iterator, List, Sequence

import torch


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str]) -> Iterator[List[str]]:
    """Write several files all or nothing.

    Yields one temporary path per output, hidden (``.<name>.XXXX<ext>``) in
    the output's directory, with the permissions ``open()`` would give and
    the same extension (writers such as ``Config.dump`` pick the format
    from it). When the block finishes, every temporary file is renamed onto
    its output (``os.replace``, atomic within a directory); when it raises,
    every temporary file is removed and no output is touched. Temporary
    files of an output that a killed run left behind are removed first (so
    two processes must not write the same outputs at once).

    Args:
        paths (Sequence[str]): The files to write; their directories are
            created if needed.

    Yields:
        list[str]: The temporary paths to write, in the order of ``paths``.
    """
    umask = os.umask(0)
    os.umask(umask)
    temps: List[str] = []
    try:
        for path in paths:
            out_dir = osp.dirname(osp.abspath(path))
            os.makedirs(out_dir, exist_ok=True)
            name, ext = osp.splitext(osp.basename(path))
            # mkstemp's names: prefix, 8 characters of [a-z0-9_], suffix.
            for stale in glob.glob(
                    osp.join(
                        glob.escape(out_dir), f'.{glob.escape(name)}.' +
                        '[a-z0-9_]' * 8 + glob.escape(ext))):
                os.remove(stale)
            fd, temp = tempfile.mkstemp(
                dir=out_dir, prefix=f'.{name}.', suffix=ext)
            os.close(fd)
            temps.append(temp)
            os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it 0600
        yield temps
        for temp, path in zip(temps, paths):
            os.replace(temp, path)
        temps = []
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)


def write_checkpoint(checkpoint: dict, path: str) -> None:
    """``torch.save`` to ``path`` such that a failed write (a full disk)
    raises ``OSError``, which torch reports as an opaque ``RuntimeError``:
    serialized in memory, then written by Python.

    Args:
        checkpoint (dict): What to save.
        path (str): The file, usually a temporary path of
            :func:`atomic_outputs`.
    """
    serialized = io.BytesIO()
    torch.save(checkpoint, serialized)
    with open(path, 'wb') as f:
        f.write(serialized.getbuffer())
