"""``mmdks.utils.scalar_log``: the training-log reader that the plot and
the study tools share."""
import json

from mmdks.utils import latest_scalars, val_history


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
