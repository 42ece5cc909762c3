import json
import math

import pytest

from mmdks.analysis import (latest_scalars, mean_std, paired_interval,
                            val_history)


def test_mean_std_and_paired_interval_by_hand():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    # diffs 1, 2, 3: mean 2, std 1, t(0.975, 2) = 4.303
    d = paired_interval([11, 12, 13], [10, 10, 10])
    half = 4.303 / math.sqrt(3)
    assert d['mean'] == 2 and d['n'] == 3
    assert d['low'] == pytest.approx(2 - half)
    assert d['high'] == pytest.approx(2 + half)
    with pytest.raises(ValueError):
        paired_interval([1], [2])


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
