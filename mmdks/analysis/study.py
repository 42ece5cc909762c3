"""Summaries of seeded comparisons: each method's spread over its seeds,
the paired differences of two methods over the seeds they share, and what
the compared runs ran on.

The t-interval and the signed-rank test come from SciPy, an optional
dependency (``requirements/tests.txt``); without it a summary says so
instead of giving them.
"""
import math
from typing import (Dict, Iterable, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

# Fewer pairs get no interval: two differences give a standard deviation
# of one degree of freedom, which can even be zero by chance.
MIN_INTERVAL_PAIRS = 3
# From this many pairs a signed-rank test is added; it does not lean on the
# differences being normal.
MIN_RANK_TEST_PAIRS = 10
# Differences are rounded to this many decimals, so that float noise
# (8.08 - 8.03 != 8.29 - 8.24) neither fakes spread nor splits ties.
DECIMALS = 9
NOT_RECORDED = 'not recorded'
# What a run records about the code and libraries it ran (run_provenance),
# with the words a report uses for each field.
PROVENANCE_FIELDS = {
    'device': 'device',
    'commit': 'commit',
    'dirty': 'uncommitted changes',
    'torch': 'torch',
    'mmpretrain': 'mmpretrain',
    'mmengine': 'mmengine',
}

# Where run_provenance's ``env`` (MMPretrain's collect_env) keeps the
# versions; runs recorded before it kept them flat, under the field names.
ENV_NAMES = {'torch': 'PyTorch', 'mmpretrain': 'MMPreTrain',
             'mmengine': 'MMEngine'}

Run = Tuple[str, int]  # (method, seed)


def _scipy_stats():
    """``scipy.stats``, or None where SciPy is not installed."""
    try:
        from scipy import stats
    except ImportError:
        return None
    return stats


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation.

    Args:
        values (Sequence[float]): At least one value.

    Returns:
        tuple[float, float]: The mean, and the standard deviation (NaN for
        one value: it has no spread to estimate).
    """
    n = len(values)
    if not n:
        raise ValueError('mean_std needs at least one value')
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))


def format_mean_std(values: Sequence[float]) -> str:
    """``mean +/- std`` to two decimals; one value is shown alone."""
    mean, std = mean_std(values)
    return f'{mean:.2f}' if len(values) < 2 else f'{mean:.2f} +/- {std:.2f}'


def seed_ranges(seeds: Iterable[int]) -> str:
    """Seeds as sorted runs of consecutive numbers, e.g. ``0-4, 7``."""
    spans: List[List[int]] = []
    for seed in sorted(set(seeds)):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ', '.join(str(a) if a == b else f'{a}-{b}' for a, b in spans)


def runs_text(runs: Iterable[Run]) -> str:
    """Runs grouped by method, e.g. ``baseline 0-1, dks 0``."""
    by_method: Dict[str, List[int]] = {}
    for method, seed in runs:
        by_method.setdefault(method, []).append(seed)
    return ', '.join(f'{method} {seed_ranges(seeds)}'
                     for method, seeds in by_method.items())


class PairedDifference(NamedTuple):
    """The differences ``a - b`` over the seeds two methods share.

    ``mean`` is NaN without a shared seed and ``std`` with fewer than two;
    ``interval`` (a t-interval of the mean) and ``wilcoxon_p`` (two-sided
    signed-rank test) are None where they are not given, and ``notes`` say
    why.
    """
    seeds: List[int]
    mean: float
    std: float
    interval: Optional[Tuple[float, float]]
    wilcoxon_p: Optional[float]
    notes: List[str]

    @property
    def n(self) -> int:
        return len(self.seeds)


def paired_difference(a: Mapping[int, float],
                      b: Mapping[int, float],
                      confidence: float = 0.95) -> PairedDifference:
    """Summarise the paired differences ``a[s] - b[s]`` of two methods.

    A t-interval of the mean difference is given from
    :data:`MIN_INTERVAL_PAIRS` pairs on, unless every difference is equal
    (its width would be zero); a Wilcoxon signed-rank test from
    :data:`MIN_RANK_TEST_PAIRS` on (zero differences dropped, SciPy's
    default).

    Args:
        a, b (Mapping[int, float]): One value per seed; only the seeds in
            both are paired.
        confidence (float): Coverage of the interval. Defaults to 0.95.

    Returns:
        PairedDifference: The shared seeds, mean and standard deviation of
        the differences, the interval and test where given, and notes.
    """
    seeds = sorted(set(a) & set(b))
    diffs = [round(a[s] - b[s], DECIMALS) for s in seeds]
    n = len(diffs)
    mean, std = mean_std(diffs) if n else (math.nan, math.nan)
    notes = []
    if not n:
        notes.append('no seed in common')
    elif n < MIN_INTERVAL_PAIRS:
        reason = 'one pair has no spread' if n == 1 else \
            f'the spread of {n} differences is too unsure to bound the mean'
        notes.append(f'no interval: {reason} (an interval needs '
                     f'{MIN_INTERVAL_PAIRS} pairs or more)')
    elif len(set(diffs)) == 1:
        notes.append(f'no interval: all {n} differences are equal, so a '
                     't-interval would have zero width')
    wants_interval = n >= MIN_INTERVAL_PAIRS and len(set(diffs)) > 1
    wants_test = n >= MIN_RANK_TEST_PAIRS and any(diffs)
    if n >= MIN_RANK_TEST_PAIRS and not wants_test:
        notes.append('no signed-rank test: every difference is zero')
    stats = _scipy_stats()
    if stats is None and (wants_interval or wants_test):
        notes.append('SciPy is not installed (pip install scipy): no ' +
                     ' and no '.join(
                         name for name, wanted in (
                             ('t-interval', wants_interval),
                             ('signed-rank test', wants_test)) if wanted))
        wants_interval = wants_test = False
    interval = p_value = None
    if wants_interval:
        low, high = stats.t.interval(
            confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
        interval = (float(low), float(high))
    if wants_test:
        p_value = float(stats.wilcoxon(diffs).pvalue)
    return PairedDifference(seeds, mean, std, interval, p_value, notes)


def format_difference(diff: PairedDifference,
                      confidence: float = 0.95) -> str:
    """One line of a report, e.g. ``n=5 (seeds 0-4), mean +0.39, std 0.11,
    95% t-interval [+0.25, +0.53]``, with the notes after a semicolon."""
    parts = [f'n={diff.n}']
    if diff.n:
        seeds = 'seed' if diff.n == 1 else 'seeds'
        parts[0] += f' ({seeds} {seed_ranges(diff.seeds)})'
        parts.append(f'mean {diff.mean:+.2f}')
    if diff.n > 1:
        parts.append(f'std {diff.std:.2f}')
    if diff.interval:
        parts.append(f'{confidence:.0%} t-interval '
                     '[{:+.2f}, {:+.2f}]'.format(*diff.interval))
    if diff.wilcoxon_p is not None:
        parts.append(f'Wilcoxon signed-rank p = {diff.wilcoxon_p:.3g}')
    return '; '.join([', '.join(parts)] + diff.notes)


def provenance_of(record: Mapping) -> Dict[str, str]:
    """What a run's ``run.json`` says it ran on, as report text.

    Args:
        record (Mapping): A run's record, with the fields of
            :func:`run_provenance` (versions in ``env``, or flat in runs
            recorded before) and ``device``.

    Returns:
        dict: One text per :data:`PROVENANCE_FIELDS` key: the commit
        shortened to 7 characters, ``yes``/``no`` for uncommitted changes,
        and :data:`NOT_RECORDED` for a field the record lacks (runs from
        before provenance was recorded).
    """
    text = {}
    for key in PROVENANCE_FIELDS:
        value = record.get(key)
        if value is None and key in ENV_NAMES:
            value = record.get('env', {}).get(ENV_NAMES[key])
        if value is None:
            text[key] = NOT_RECORDED
        elif key == 'dirty':
            text[key] = 'yes' if value else 'no'
        else:
            text[key] = str(value)[:7] if key == 'commit' else str(value)
    return text


def provenance_changes(runs: Mapping[Run, Mapping]) -> List[str]:
    """One line for each provenance field on which some runs disagree.

    Args:
        runs (Mapping[tuple[str, int], Mapping]): Records by (method,
            seed).

    Returns:
        list[str]: E.g. ``commit: 6cb8246 (baseline 0-4, dks 0-4),
        bf1cbb3 (baseline 21)``; empty when every field agrees.
    """
    lines = []
    for key, name in PROVENANCE_FIELDS.items():
        holders: Dict[str, List[Run]] = {}
        for run, record in runs.items():
            holders.setdefault(provenance_of(record)[key], []).append(run)
        if len(holders) > 1:
            lines.append(f'{name}: ' + ', '.join(
                f'{value} ({runs_text(held)})'
                for value, held in holders.items()))
    return lines
