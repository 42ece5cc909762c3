"""``mmdks.utils.scalar_log``: the training-log reader that the plot and
the study tools share."""
import json
import os

from mmdks.utils import (latest_scalars, load_run_scalars, resumed_from,
                         stitch_sessions, val_history)


def test_val_history_reads_the_newest_log(tmp_path):
    for stamp, acc in (('20260101_000000', 10.0), ('20260102_000000', 70.0)):
        log = tmp_path / stamp / 'vis_data' / 'scalars.json'
        log.parent.mkdir(parents=True)
        log.write_text('\n'.join(json.dumps(r) for r in [
            dict(loss=1.0, epoch=1, iter=1, step=1),  # a training record
            dict(**{'accuracy/top1': acc}, step=1),
            dict(**{'accuracy/top1': acc + 1}, step=2),
        ]))
    records = latest_scalars(str(tmp_path))
    assert val_history(records, 'accuracy/top1') == [(1, 70.0), (2, 71.0)]


def write_session(root, stamp: str, records) -> str:
    log = root / stamp / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    return str(log)


def epochs(first: int, last: int, acc: float = 0.0) -> list:
    """Two logged iterations (5 a epoch, logging interval 2) and a
    validation per epoch."""
    records = []
    for epoch in range(first, last + 1):
        for it in (2, 4):
            step = (epoch - 1) * 5 + it
            records.append(dict(loss=1.0 / step, epoch=epoch, iter=step,
                                step=step))
        records.append({'accuracy/top1': acc + epoch, 'step': epoch})
    return records


def test_a_resumed_run_is_read_across_its_sessions(tmp_path):
    # An unrelated earlier run, the run's first session (killed during
    # epoch 3, after the checkpoint of epoch 2), and its --resume; the
    # sessions' mtimes say nothing about their order (a copy, a checkout).
    other = write_session(tmp_path, '20260101_000000', epochs(1, 4, 50.0))
    first = write_session(tmp_path, '20260102_000000', epochs(1, 3)[:-2])
    resumed = write_session(tmp_path, '20260103_000000', epochs(3, 4, 0.5))
    for age, log in enumerate((resumed, first, other)):
        os.utime(log, (age, age))
    logs, records = load_run_scalars(str(tmp_path))
    assert logs == [first, resumed]
    assert val_history(records, 'accuracy/top1') == \
        [(1, 1.0), (2, 2.0), (3, 3.5), (4, 4.5)]
    # Epoch 3's first iteration, logged by both sessions, counts once.
    assert [r['iter'] for r in records if 'iter' in r] == \
        [2, 4, 7, 9, 12, 14, 17, 19]


def test_a_fresh_run_into_the_same_work_dir_starts_the_history(tmp_path):
    write_session(tmp_path, '20260101_000000', epochs(1, 2))
    again = write_session(tmp_path, '20260102_000000', epochs(1, 1, 9.0))
    logs, records = load_run_scalars(str(tmp_path))
    assert logs == [again]
    assert val_history(records, 'accuracy/top1') == [(1, 10.0)]


def test_iteration_based_resume(tmp_path):
    def iters(first, last):
        return [dict(loss=1.0, iter=i, step=i) for i in range(first, last)] \
            + [{'accuracy/top1': float(last), 'step': last}]
    write_session(tmp_path, '20260101_000000', iters(1, 10) + iters(10, 13))
    write_session(tmp_path, '20260102_000000', iters(11, 20))
    records = latest_scalars(str(tmp_path))
    assert [r['iter'] for r in records if 'iter' in r] == list(range(1, 20))
    assert val_history(records, 'accuracy/top1') == [(10, 10.0), (20, 20.0)]


def test_stitching_stops_at_the_first_session_not_resumed_from():
    a, b, c = epochs(1, 2), epochs(1, 2), epochs(3, 3)
    records, used = stitch_sessions([a, b, c])
    assert used == 2 and records == b + c
    assert resumed_from(b, a) is None and resumed_from(c, b) == 3
