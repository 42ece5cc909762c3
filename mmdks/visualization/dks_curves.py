"""Plot the DKS training curves of a work dir from MMEngine's scalar log.

MMEngine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/
scalars.json``, one JSON object a line: the training records (``step`` is
the iteration) carry the loss terms, the validation records (``step`` is the
epoch in epoch-based training) carry the metric keys.
"""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Tuple

from mmdks.utils.fileio import atomic_outputs

LOSS_KEY = re.compile(r'^(.+/loss_ce|loss_synergy)$')
# BranchAccuracy's top-1 keys under any prefix, and MMPretrain's Accuracy.
VAL_KEY = re.compile(
    r'^([^/]+/(branch_\d+|main|ensemble)_top1|accuracy/top1)$')


def find_scalars_log(work_dir: str, name: str = 'scalars.json') -> str:
    """The newest ``vis_data/scalars.json`` of a work dir.

    Args:
        work_dir (str): A training work dir (or one of its timestamped run
            dirs).
        name (str): The log's file name (a glob pattern). Defaults to
            MMEngine's JSON scalar log.

    Returns:
        str: The most recently modified scalar log.

    Raises:
        FileNotFoundError: If there is none.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir} is not a directory')
    logs = glob.glob(osp.join(work_dir, 'vis_data', name)) + \
        glob.glob(osp.join(work_dir, '*', 'vis_data', name))
    if not logs:
        raise FileNotFoundError(
            f'no */vis_data/{name} under {work_dir}: is it the --work-dir '
            'of a run that has logged at least one iteration?')
    return max(logs, key=lambda p: (osp.getmtime(p), p))


def load_scalars(path: str) -> List[dict]:
    """The records of a scalar log, one dict per line.

    Args:
        path (str): A ``scalars.json``.

    Returns:
        list[dict]: The records in file order.

    Raises:
        ValueError: If a line is not a JSON object.
    """
    records = []
    with open(path) as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{num} is not JSON ({e})') from None
            if not isinstance(record, dict):
                raise ValueError(f'{path}:{num} is not a JSON object')
            records.append(record)
    return records


def _series(records: List[dict],
            pattern: re.Pattern) -> Dict[str, Tuple[list, list]]:
    """``{key: (steps, values)}`` of every key matching ``pattern``."""
    series: Dict[str, Tuple[list, list]] = {}
    for record in records:
        for key, value in record.items():
            if pattern.match(key) and 'step' in record:
                steps, values = series.setdefault(key, ([], []))
                steps.append(record['step'])
                values.append(value)
    return series


def _curve_of(key: str) -> Tuple[int, int, str]:
    """Sort key and name of a curve: the classifier (``branch_k``, shallowest
    first, then ``main``, ``ensemble``) or the term (``synergy``,
    ``accuracy``); a classifier keeps its colour in both panels."""
    found = re.search(r'branch_(\d+)', key)
    if found:
        return 0, int(found.group(1)), found.group(0)
    for rank, word in enumerate(('main', 'ensemble', 'synergy', 'accuracy')):
        if word in key:
            return 1 + rank, 0, word
    return 9, 0, key


def _order(key: str) -> Tuple[int, int, str]:
    return _curve_of(key)[:2] + (key, )


def plot_dks_curves(records: List[dict],
                    out: str,
                    force: bool = False) -> Dict[str, List[str]]:
    """Write a PNG with the loss terms over iterations and the top-1
    validation accuracy of every classifier over epochs.

    Args:
        records (list[dict]): Records of a scalar log (:func:`load_scalars`).
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
    losses = _series(records, LOSS_KEY)
    accuracies = _series(records, VAL_KEY)
    if not losses and not accuracies:
        raise ValueError(
            'the log has no DKS loss terms (*/loss_ce, loss_synergy) and no '
            'top-1 validation metrics: is it the log of a DKS run?')
    by_epoch = any('epoch' in r for r in records if 'lr' in r)

    import matplotlib
    matplotlib.use('Agg')  # no display needed; a file is all we write
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    names = sorted({_curve_of(k) for k in (*losses, *accuracies)})
    colors = {name: f'C{i}' for i, (*_, name) in enumerate(names)}
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
            name = _curve_of(key)[2]
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
