"""Summarising seeded comparisons."""
import math
from typing import Dict, Sequence, Tuple

# Two-sided 95% Student-t quantiles t_{0.975, df} for small df; beyond the
# table the normal quantile is close enough for a report.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
    8: 2.306, 9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042
}


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))


def t975(df: int) -> float:
    """Two-sided 95% Student-t quantile (the next smaller tabled df)."""
    return _T975[max(d for d in _T975 if d <= df)] if df <= 30 else 1.96


def paired_interval(a: Sequence[float],
                    b: Sequence[float]) -> Dict[str, float]:
    """Mean of the paired differences ``a - b`` and its 95% interval.

    Args:
        a, b: One value per seed, the same seeds in the same order.

    Returns:
        dict: ``mean``, ``low``, ``high`` and the number of pairs ``n``.
    """
    if len(a) != len(b) or len(a) < 2:
        raise ValueError('need at least two paired values')
    diffs = [x - y for x, y in zip(a, b)]
    mean, std = mean_std(diffs)
    half = t975(len(diffs) - 1) * std / math.sqrt(len(diffs))
    return dict(mean=mean, low=mean - half, high=mean + half, n=len(diffs))
