import math

import pytest

from mmdks.analysis import mean_std, paired_interval


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
