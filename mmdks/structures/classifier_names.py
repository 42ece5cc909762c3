"""The names of a DKS model's classifiers, as every log key, metric and
report spells them: ``branch_1`` .. ``branch_{K-1}`` (shallowest first),
``main`` (the backbone's own head, the one deployed) and ``ensemble`` (the
averaged probabilities of all K, a metric only)."""
import re
from typing import Optional, Tuple

MAIN = 'main'
ENSEMBLE = 'ensemble'
_BRANCH = re.compile(r'\bbranch_(\d+)(?=/|_|$)')
_OTHERS = re.compile(rf'\b({MAIN}|{ENSEMBLE})(?=/|_|$)')


def branch_name(k: int) -> str:
    """The name of branch ``k``, counted from 1 (the shallowest)."""
    return f'branch_{k}'


def classifier_names(num_classifiers: int) -> Tuple[str, ...]:
    """The names of K classifiers: the K - 1 branches, then ``main``."""
    return tuple(branch_name(k)
                 for k in range(1, num_classifiers)) + (MAIN, )


def classifier_of(key: str) -> Optional[str]:
    """The classifier a logged key belongs to, e.g. ``'branch_2'`` for
    ``'branch_2/loss'`` and ``'main'`` for ``'branch/main_top1'``; None for
    keys of no single classifier (``'loss_synergy'``)."""
    found = _BRANCH.search(key) or _OTHERS.search(key)
    return found.group(0) if found else None


def classifier_order(name: str) -> Tuple[int, int]:
    """Sort key: branches shallowest first, then ``main``, then
    ``ensemble``."""
    found = _BRANCH.fullmatch(name)
    if found:
        return 0, int(found.group(1))
    return (1, 0) if name == MAIN else (2, 0)
