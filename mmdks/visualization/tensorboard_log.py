"""Read the scalars of a run logged with MMEngine's ``TensorboardVisBackend``
(``visualizer = dict(vis_backends=[dict(type='TensorboardVisBackend')])``),
as the records MMEngine's JSON scalar log holds."""
import os.path as osp
from typing import List, Tuple

from .dks_curves import find_scalars_log, load_scalars

EVENTS = 'events.out.tfevents.*'


def find_event_file(work_dir: str) -> str:
    """The newest TensorBoard event file of a work dir's runs
    (``<work_dir>/<timestamp>/vis_data/events.out.tfevents.*``).

    Raises:
        FileNotFoundError: If there is none.
    """
    return find_scalars_log(work_dir, EVENTS)


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
            log = find_event_file(work_dir)
        except FileNotFoundError as no_events:
            raise FileNotFoundError(f'{no_json}; {no_events}') from None
        return log, load_event_scalars(log)
    return log, load_scalars(log)
