"""Plot the DKS training curves of a work dir from MMEngine's scalar log
(read with :mod:`mmdks.utils.scalar_log`)."""
import os.path as osp
from typing import Callable, Dict, List, Tuple

from mmdks.structures import classifier_of, classifier_order
from mmdks.utils.fileio import atomic_outputs

SYNERGY_KEY = 'loss_synergy'
# MMPretrain's Accuracy, beside BranchAccuracy's ``<prefix>/<name>_top1``.
MAIN_ACCURACY_KEY = 'accuracy/top1'


def _is_loss(key: str) -> bool:
    """A classifier's loss term (``branch_1/loss``; ``.../loss_ce`` in logs
    of mmdks 0.1) or the synergy term."""
    if key == SYNERGY_KEY:
        return True
    name, _, term = key.partition('/')
    return classifier_of(name) == name and term.startswith('loss')


def _is_top1(key: str) -> bool:
    """A top-1 validation accuracy of one classifier, or the main one."""
    if key == MAIN_ACCURACY_KEY:
        return True
    _, _, metric = key.partition('/')
    return metric.endswith('_top1') and classifier_of(metric) is not None


def _series(records: List[dict],
            wanted: Callable[[str], bool]) -> Dict[str, Tuple[list, list]]:
    """``{key: (steps, values)}`` of every key ``wanted`` accepts."""
    series: Dict[str, Tuple[list, list]] = {}
    for record in records:
        for key, value in record.items():
            if 'step' in record and wanted(key):
                steps, values = series.setdefault(key, ([], []))
                steps.append(record['step'])
                values.append(value)
    return series


def _curve_of(key: str) -> Tuple[Tuple[int, int], str]:
    """Sort key and name of a curve: the classifier (branches shallowest
    first, then main, ensemble) or the term (synergy, then the main
    accuracy); a classifier keeps its colour in both panels."""
    name = classifier_of(key)
    if name is not None and key != MAIN_ACCURACY_KEY:
        return classifier_order(name), name
    return ((3, 0), 'synergy') if key == SYNERGY_KEY else ((4, 0), 'accuracy')


def _order(key: str) -> Tuple[Tuple[int, int], str]:
    return _curve_of(key)[0], key


def plot_dks_curves(records: List[dict],
                    out: str,
                    force: bool = False) -> Dict[str, List[str]]:
    """Write a PNG with the loss terms over iterations and the top-1
    validation accuracy of every classifier over epochs.

    Args:
        records (list[dict]): Records of a scalar log
            (:func:`mmdks.utils.load_scalars`).
        out (str): Path of the PNG to write (written to a temporary file
            beside it, then renamed).
        force (bool): Replace ``out`` if it exists. Defaults to False.

    Returns:
        dict: The plotted keys, ``{'loss': [...], 'val': [...]}``.

    Raises:
        FileExistsError: If ``out`` exists and ``force`` is False.
        ValueError: If ``out`` is not a ``.png`` or nothing in the records
            can be plotted.
    """
    if not out.lower().endswith('.png'):
        raise ValueError(f'--out must be a .png file, got {out}')
    if osp.exists(out) and not force:
        raise FileExistsError(f'{out} exists; pass --force to replace it')
    losses = _series(records, _is_loss)
    accuracies = _series(records, _is_top1)
    if not losses and not accuracies:
        raise ValueError(
            'the log has no DKS loss terms (*/loss, loss_synergy) and no '
            'top-1 validation metrics: is it the log of a DKS run?')
    by_epoch = any('epoch' in r for r in records if 'lr' in r)

    import matplotlib
    matplotlib.use('Agg')  # no display needed; a file is all we write
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    names = sorted({_curve_of(k) for k in (*losses, *accuracies)})
    colors = {name: f'C{i}' for i, (_, name) in enumerate(names)}
    # Accuracy scores the main head too: draw it over main's curve.
    colors['accuracy'] = 'black'
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, series, xlabel, ylabel, title in (
        (ax_loss, losses, 'iteration', 'loss', 'training losses'),
        (ax_acc, accuracies, 'epoch' if by_epoch else 'iteration',
         'top-1 accuracy (%)', 'validation accuracy'),
    ):
        for key in sorted(series, key=_order):
            steps, values = series[key]
            name = _curve_of(key)[1]
            ax.plot(
                steps,
                values,
                color=colors[name],
                linestyle='--' if name in ('accuracy', 'ensemble') else '-',
                marker=('x' if name == 'accuracy' else 'o')
                if len(steps) < 30 else None,
                markersize=4,
                label=key)
        if series:
            ax.legend(fontsize='small')
        else:
            ax.text(
                0.5,
                0.5,
                'not in the log',
                ha='center',
                va='center',
                transform=ax.transAxes,
                color='gray')
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()

    try:
        with atomic_outputs([out]) as (tmp, ):
            fig.savefig(tmp, format='png', dpi=120)
    finally:
        plt.close(fig)
    return dict(
        loss=sorted(losses, key=_order), val=sorted(accuracies, key=_order))
