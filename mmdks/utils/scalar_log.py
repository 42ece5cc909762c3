"""Reading MMEngine's scalar log, for the tools that plot and report runs.

MMEngine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/
scalars.json``, one JSON object a line: the training records (``step`` is
the iteration) carry the loss terms, the validation records (``step`` is the
epoch in epoch-based training) carry the metric keys.
"""
import glob
import json
import os.path as osp
from typing import List, Sequence, Tuple


def find_scalars_log(work_dir: str) -> str:
    """The newest ``vis_data/scalars.json`` of a work dir.

    Args:
        work_dir (str): A training work dir (or one of its timestamped run
            dirs).

    Returns:
        str: The most recently modified scalar log.

    Raises:
        FileNotFoundError: If there is none.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir} is not a directory')
    logs = glob.glob(osp.join(work_dir, 'vis_data', 'scalars.json')) + \
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if not logs:
        raise FileNotFoundError(
            f'no */vis_data/scalars.json under {work_dir}: is it the '
            '--work-dir of a run that has logged at least one iteration?')
    return max(logs, key=lambda p: (osp.getmtime(p), p))


def load_scalars(path: str) -> List[dict]:
    """The records of a scalar log, one dict per line.

    Args:
        path (str): A ``scalars.json``.

    Returns:
        list[dict]: The records in file order.

    Raises:
        ValueError: If a line is not a JSON object.
    """
    records = []
    with open(path) as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{num} is not JSON ({e})') from None
            if not isinstance(record, dict):
                raise ValueError(f'{path}:{num} is not a JSON object')
            records.append(record)
    return records


def latest_scalars(work_dir: str) -> List[dict]:
    """Records of the newest ``vis_data/scalars.json`` under ``work_dir``."""
    return load_scalars(find_scalars_log(work_dir))


def val_history(records: Sequence[dict], key: str) -> List[Tuple[int, float]]:
    """(step, value) of every validation record that has ``key``; MMEngine
    logs validation with ``step`` = the epoch (or iteration) evaluated."""
    return [(r['step'], r[key]) for r in records
            if key in r and 'iter' not in r]
