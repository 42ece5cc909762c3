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
import re
from typing import List, Optional, Sequence, Tuple


EVENTS = 'events.out.tfevents.*'
# MMEngine names a session's log dir by its start time.
TIMESTAMP = re.compile(r'\d{8}_\d{6}')


def session_logs(work_dir: str, name: str = 'scalars.json') -> List[str]:
    """The ``vis_data/<name>`` of every session of a work dir, oldest first.

    Every start of MMEngine's runner (a fresh run, a ``--resume``, a test)
    logs to a new ``<work_dir>/<timestamp>/vis_data``. Sessions are ordered
    by that timestamp, which survives copying, then by modification time.

    Args:
        work_dir (str): A training work dir (or one of its timestamped run
            dirs).
        name (str): The log's file name (a glob pattern). Defaults to
            MMEngine's JSON scalar log.

    Returns:
        list[str]: The scalar logs, oldest session first.

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

    def order(path: str) -> tuple:
        session = osp.basename(osp.dirname(osp.dirname(path)))
        return (session if TIMESTAMP.fullmatch(session) else '',
                osp.getmtime(path), path)

    return sorted(logs, key=order)


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


def resumed_from(records: Sequence[dict],
                 earlier: Sequence[dict]) -> Optional[int]:
    """Where a session's records continue an earlier session's, if they do.

    A fresh run's first training record is of epoch 1 (epoch-based loops)
    or of the first logging interval; a resumed one starts later. For
    iteration-based loops without ``epoch`` in the records, a session is
    taken as resumed when it starts at a later iteration than the earlier
    session did.

    Args:
        records (Sequence[dict]): The later session's records.
        earlier (Sequence[dict]): The earlier session's records.

    Returns:
        int | None: The epoch (epoch-based loops) or iteration the later
        session starts training at, the ``step`` its validation records
        count in; None if it does not continue the earlier one.
    """
    first = next((r for r in records if 'iter' in r), None)
    start = next((r['iter'] for r in earlier if 'iter' in r), None)
    if first is None or start is None or first['iter'] <= start:
        return None
    if 'epoch' in first:
        return first['epoch'] if first['epoch'] > 1 else None
    return first['iter']


def stitch_sessions(
        sessions: Sequence[Sequence[dict]]) -> Tuple[List[dict], int]:
    """One run's records from the sessions that logged it.

    The newest session is taken whole; while it (or the run stitched so
    far) was resumed from the session before, that session's records from
    before the resume point are put in front: training records of earlier
    iterations, validation records of earlier epochs (iterations). What a
    session logged after the checkpoint it was resumed from is dropped, as
    the resumed session trained those steps again.

    Args:
        sessions (Sequence[Sequence[dict]]): Records per session, oldest
            first.

    Returns:
        tuple[list[dict], int]: The records of the newest session's run, and
        how many of the newest sessions they come from.
    """
    run = list(sessions[-1])
    used = 1
    for earlier in reversed(sessions[:-1]):
        at = resumed_from(run, earlier)
        if at is None:
            break
        used += 1
        first_iter = next(r['iter'] for r in run if 'iter' in r)
        run = [
            r for r in earlier
            if (r['iter'] < first_iter if 'iter' in r else r['step'] < at)
        ] + run
    return run, used


def load_run_scalars(work_dir: str) -> Tuple[List[str], List[dict]]:
    """The scalar records of a run: from MMEngine's JSON scalar logs
    (``LocalVisBackend``, full precision) if it has them, else from its
    TensorBoard event files. A run resumed into its work dir
    (``--resume``) is read across its sessions (:func:`stitch_sessions`).

    Returns:
        tuple[list[str], list[dict]]: The logs read (oldest first) and the
        run's records.

    Raises:
        FileNotFoundError: If the work dir has neither log.
    """
    try:
        logs, load = session_logs(work_dir), load_scalars
    except FileNotFoundError as no_json:
        if not osp.isdir(work_dir):
            raise
        try:
            logs, load = session_logs(work_dir, EVENTS), load_event_scalars
        except FileNotFoundError as no_events:
            raise FileNotFoundError(f'{no_json}; {no_events}') from None
    run, used = stitch_sessions([load(log) for log in logs])
    return logs[-used:], run


def latest_scalars(work_dir: str) -> List[dict]:
    """Records of the newest run under ``work_dir`` (JSON, else
    TensorBoard logs), across the sessions of a resumed run."""
    return load_run_scalars(work_dir)[1]


def val_history(records: Sequence[dict], key: str) -> List[Tuple[int, float]]:
    """(step, value) of every validation record that has ``key``; MMEngine
    logs validation with ``step`` = the epoch (or iteration) evaluated."""
    return [(r['step'], r[key]) for r in records
            if key in r and 'iter' not in r]
