"""``mmdks.analysis.study``: the statistics of the seeded study, checked
against hand-computed values, degenerate cases included."""
import math
import sys

import pytest

from mmdks.analysis import (NOT_RECORDED, format_difference, format_mean_std,
                            mean_std, paired_difference, provenance_changes,
                            provenance_of, runs_text, seed_ranges)

# Two-sided 95% Student-t quantiles, from a printed table.
T975 = {2: 4.3027, 9: 2.2622}


def by_seed(values, first=0):
    return {first + i: v for i, v in enumerate(values)}


def test_mean_std_by_hand():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, std = mean_std([5.0])
    assert mean == 5.0 and math.isnan(std)
    with pytest.raises(ValueError):
        mean_std([])
    assert format_mean_std([1.0, 2.0, 3.0]) == '2.00 +/- 1.00'
    assert format_mean_std([8.3]) == '8.30'


def test_seed_ranges_and_runs_text():
    assert seed_ranges([9, 4, 0, 1, 2, 7, 10, 2]) == '0-2, 4, 7, 9-10'
    assert seed_ranges([13]) == '13'
    assert seed_ranges([]) == ''
    assert runs_text([('baseline', 8), ('dks', 9), ('baseline', 7),
                      ('baseline', 9)]) == 'baseline 7-9, dks 9'


def test_t_interval_on_the_shared_seeds():
    # Seeds 0-2 are shared; diffs 1, 2, 3: mean 2, std 1, n 3.
    a = {0: 11.0, 1: 12.0, 2: 13.0, 5: 99.0}
    b = {0: 10.0, 1: 10.0, 2: 10.0, 7: 0.0}
    d = paired_difference(a, b)
    assert (d.seeds, d.n, d.mean, d.std) == ([0, 1, 2], 3, 2.0, 1.0)
    half = T975[2] / math.sqrt(3)
    assert d.interval == pytest.approx((2 - half, 2 + half), rel=1e-4)
    assert d.wilcoxon_p is None and d.notes == []
    assert format_difference(d) == (
        'n=3 (seeds 0-2), mean +2.00, std 1.00, '
        '95% t-interval [-0.48, +4.48]')


def test_one_pair_gives_no_interval():
    d = paired_difference({13: 8.24}, {13: 8.30})
    assert d.n == 1 and d.mean == pytest.approx(-0.06)
    assert math.isnan(d.std) and d.interval is None
    assert format_difference(d) == (
        'n=1 (seed 13), mean -0.06; no interval: one pair has no spread '
        '(an interval needs 3 pairs or more)')


def test_two_equal_differences_give_no_zero_width_interval():
    # The case: 8.08 - 8.03 and 8.29 - 8.24, equal up to float
    # noise, once printed as +0.05 [+0.05, +0.05].
    d = paired_difference({21: 8.08, 22: 8.29}, {21: 8.03, 22: 8.24})
    assert d.std == 0 and d.interval is None
    line = format_difference(d)
    assert line.startswith('n=2 (seeds 21-22), mean +0.05, std 0.00; '
                           'no interval: the spread of 2 differences')
    assert '[' not in line


def test_equal_differences_give_no_interval():
    d = paired_difference(by_seed([8.08, 8.29, 8.13, 7.98]),
                          by_seed([8.03, 8.24, 8.08, 7.93]))
    assert d.n == 4 and d.std == 0 and d.interval is None
    assert d.notes == ['no interval: all 4 differences are equal, so a '
                       't-interval would have zero width']
    zero = paired_difference(by_seed([8.0] * 3), by_seed([8.0] * 3))
    assert zero.mean == 0 and zero.interval is None


def test_signed_rank_test_from_ten_pairs():
    # Diffs 1..10, all positive: the exact two-sided p is 2 / 2**10.
    d = paired_difference(by_seed([float(i) for i in range(1, 11)]),
                          by_seed([0.0] * 10))
    assert d.wilcoxon_p == pytest.approx(2 / 2**10)
    std = math.sqrt(sum((i - 5.5)**2 for i in range(1, 11)) / 9)
    half = T975[9] * std / math.sqrt(10)
    assert d.interval == pytest.approx((5.5 - half, 5.5 + half), rel=1e-4)
    assert format_difference(d).endswith(
        'Wilcoxon signed-rank p = 0.00195')
    nine = paired_difference(by_seed([1.0] * 9), by_seed([0.0] * 9))
    assert nine.wilcoxon_p is None
    zeros = paired_difference(by_seed([1.0] * 10), by_seed([1.0] * 10))
    assert zeros.wilcoxon_p is None
    assert 'no signed-rank test: every difference is zero' in zeros.notes


def test_without_scipy_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, 'scipy', None)  # import fails
    three = paired_difference(by_seed([11.0, 12.0, 13.0]),
                              by_seed([10.0] * 3))
    assert three.interval is None and three.mean == 2
    assert three.notes == [
        'SciPy is not installed (pip install scipy): no t-interval']
    ten = paired_difference(by_seed([float(i) for i in range(10)]),
                            by_seed([0.0] * 10))
    assert ten.wilcoxon_p is None
    assert ten.notes == ['SciPy is not installed (pip install scipy): no '
                         't-interval and no signed-rank test']


def test_provenance_text_and_changes():
    old = dict(method='baseline', seed=0, wall_s=1.0)
    new = dict(old, device='CPU', commit='a' * 40, dirty=False,
               torch='2.14.1', mmpretrain='1.2.0', mmengine='0.10.7')
    assert set(provenance_of(old).values()) == {NOT_RECORDED}
    assert provenance_of(new) == dict(
        device='CPU', commit='aaaaaaa', dirty='no', torch='2.14.1',
        mmpretrain='1.2.0', mmengine='0.10.7')
    assert provenance_changes({('baseline', 0): new, ('dks', 0): new}) == []
    moved = dict(new, commit='b' * 40, dirty=True)
    assert provenance_changes({
        ('baseline', 0): new, ('baseline', 1): new, ('dks', 0): new,
        ('baseline', 21): moved
    }) == ['commit: aaaaaaa (baseline 0-1, dks 0), bbbbbbb (baseline 21)',
           'uncommitted changes: no (baseline 0-1, dks 0), '
           'yes (baseline 21)']
    assert provenance_changes({('dks', 0): old, ('dks', 1): new})[1] == (
        f'commit: {NOT_RECORDED} (dks 0), aaaaaaa (dks 1)')
