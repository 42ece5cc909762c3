"""Reading a run's logged scalars, for the tools that plot and report runs.

MMEngine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/
scalars.json``, one JSON object a line: the training records (``step`` is
the iteration) carry the loss terms, the validation records (``step`` is the
epoch in epoch-based training) carry the metric keys. A run logged with
``TensorboardVisBackend`` instead
(``visualizer = dict(vis_backends=[dict(type='TensorboardVisBackend')])``)
has the same scalars in ``vis_data/events.out.tfevents.*``.
"""
import glob
import json
import os.path as osp
from typing import List, Sequence, Tuple


EVENTS = 'events.out.tfevents.*'


def find_scalars_log(work_dir: str, name: str = 'scalars.json') -> str:
    """The newest ``vis_data/scalars.json`` of a work dir.

    Args:
        work_dir (str): A training work dir (or one of its timestamped run
            dirs).
        name (str): The log's file name (a glob pattern). Defaults to
            MMEngine's JSON scalar log.

    Returns:
        str: The most recently modified scalar log.

    Raises:
        FileNotFoundError: If there is none.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir} is not a directory')
    logs = glob.glob(osp.join(work_dir, 'vis_data', name)) + \
        glob.glob(osp.join(work_dir, '*', 'vis_data', name))
    if not logs:
        raise FileNotFoundError(
            f'no */vis_data/{name} under {work_dir}: is it the --work-dir '
            'of a run that has logged at least one iteration?')
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


def load_event_scalars(path: str) -> List[dict]:
    """The scalars of a TensorBoard event file, as MMEngine's
    ``scalars.json`` has them: one dict per logged record, with ``step``.

    The backend writes each record (a training iteration, a validation
    epoch) as consecutive scalars of one step; a new step, or a tag seen
    again, starts the next record. Values are float32, as TensorBoard
    stores them.

    Args:
        path (str): An ``events.out.tfevents.*`` file.

    Returns:
        list[dict]: The records in file order.

    Raises:
        ImportError: If tensorboard is not installed.
    """
    try:
        from tensorboard.backend.event_processing.event_file_loader import \
            EventFileLoader
        from tensorboard.util.tensor_util import make_ndarray
    except ImportError:
        raise ImportError(
            'reading a TensorBoard log needs tensorboard: pip install '
            'tensorboard (or mmdks[tensorboard])') from None
    records: List[dict] = []
    for event in EventFileLoader(path).Load():
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name != 'scalars':
                continue
            if not records or records[-1]['step'] != event.step or \
                    value.tag in records[-1]:
                records.append({'step': event.step})
            records[-1][value.tag] = make_ndarray(value.tensor).item()
    return records


def load_run_scalars(work_dir: str) -> Tuple[str, List[dict]]:
    """The scalar records of a run: from MMEngine's JSON scalar log
    (``LocalVisBackend``, full precision) if it has one, else from its
    TensorBoard event file.

    Returns:
        tuple[str, list[dict]]: The log read and its records.

    Raises:
        FileNotFoundError: If the work dir has neither log.
    """
    try:
        log = find_scalars_log(work_dir)
    except FileNotFoundError as no_json:
        if not osp.isdir(work_dir):
            raise
        try:
            log = find_scalars_log(work_dir, EVENTS)
        except FileNotFoundError as no_events:
            raise FileNotFoundError(f'{no_json}; {no_events}') from None
        return log, load_event_scalars(log)
    return log, load_scalars(log)


def latest_scalars(work_dir: str) -> List[dict]:
    """Records of the newest scalar log under ``work_dir`` (JSON, else
    TensorBoard)."""
    return load_run_scalars(work_dir)[1]


def val_history(records: Sequence[dict], key: str) -> List[Tuple[int, float]]:
    """(step, value) of every validation record that has ``key``; MMEngine
    logs validation with ``step`` = the epoch (or iteration) evaluated."""
    return [(r['step'], r[key]) for r in records
            if key in r and 'iter' not in r]
