"""Seeded baseline / DS / DKS study on Fashion-MNIST.

Trains every method for each of its seeds (the same seed gives every
method the same data order and augmentation, and the same main-path
initialisation), scores every DS/DKS classifier on the test set, and writes
a Markdown report: each method's top-1 error over its own seeds; the paired
differences of two methods over the seeds both have (n, mean, standard
deviation, a 95% t-interval from 3 pairs, a signed-rank test from 10); and
for every run its command, wall time, device, and the commit and library
versions it ran, with a note where compared runs differ in them. A run is
finished once its ``run.json`` exists; finished runs are kept and skipped on
a re-run, so the study can be resumed; a run cut off after a checkpoint
(its work dir has ``last_checkpoint``) is continued with ``--resume``, and
``--report-only`` reports finished runs without training, listing the runs
still missing.

Example::

    python tools/analysis_tools/fashion_mnist_study.py --seeds 0 1 2 \\
        --train-size 4000 --epochs 5 --jobs 2 --out docs/results.md
    # baseline and DKS on seeds 0-9, DS on 0-4: what has finished so far
    python tools/analysis_tools/fashion_mnist_study.py --methods baseline \\
        ds dks --seeds 0-9 --method-seeds ds=0-4 --train-size 20000 \\
        --epochs 20 --report-only --out report.md
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from mmdks.analysis import (PROVENANCE_FIELDS, format_difference,
                            format_mean_std, paired_difference,
                            provenance_changes, provenance_of,
                            run_provenance, runs_text, seed_ranges)
from mmdks.structures import ENSEMBLE, classifier_names, classifier_of
from mmdks.utils import atomic_outputs, latest_scalars, val_history
from mmdks.utils.scalar_log import TIMESTAMP
from mmdks.visualization import plot_dks_curves

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = ('baseline', 'ds', 'dks')
# DKS ablations (configs/fashion_mnist/dks-*): each is compared with DKS.
ABLATIONS = ('dks-mean', 'dks-warmup', 'dks-topdown', 'dks-t3', 'dks-narrow',
             'dks-smooth')
# Networks, each with a baseline config and the DKS variants shipped for it.
ARCHS = {
    'resnet14': 'CIFAR-style ResNet-14 (MMPretrain `ResNet_CIFAR`, 3 stages '
    'x 2 BasicBlocks, 16/32/64 channels)',
    'resnet32': 'CIFAR ResNet-32 (mmdks `CifarResNet`, 3 stages x 5 '
    'BasicBlocks, 16/32/64 channels)',
}
CONFIGS = {(m, arch): 'configs/fashion_mnist/' +
           ('' if m == 'baseline' else m + '_') +
           f'{arch}_1xb128_fashion-mnist.py'
           for arch in ARCHS for m in METHODS + ABLATIONS}
CONFIGS = {k: v for k, v in CONFIGS.items() if osp.exists(osp.join(ROOT, v))}

# The study's DKS/DS models have two branches.
BRANCH_COLUMNS = classifier_names(3) + (ENSEMBLE, )
NOTES_MARK = '<!-- discussion -->'


def seed_list(text: str) -> List[int]:
    """Seeds from ``3``, ``0-4`` or ``0-4,7``."""
    try:
        seeds = []
        for part in text.split(','):
            first, _, last = part.partition('-')
            seeds += range(int(first), int(last or first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a seed, a range such as 0-4, or a comma '
            'list of those') from None
    return seeds


def method_seeds(text: str) -> Tuple[str, List[int]]:
    """``METHOD=SEEDS`` of ``--method-seeds``."""
    method, sep, seeds = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError(
            f'{text!r}: expected METHOD=SEEDS, e.g. ds=0-4')
    return method, seed_list(seeds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS + ABLATIONS)
    parser.add_argument('--arch', default='resnet14', choices=list(ARCHS))
    parser.add_argument('--seeds', nargs='+', type=seed_list,
                        default=[[0, 1, 2]],
                        help='seeds of every method (e.g. 0 1 2, or 0-9)')
    parser.add_argument(
        '--method-seeds', nargs='+', type=method_seeds, default=[],
        metavar='METHOD=SEEDS',
        help='other seeds for some methods, e.g. ds=0-4 dks-mean=0-4')
    parser.add_argument('--train-size', type=int, default=4000,
                        help='first N training images (all 10k test images '
                        'are always used)')
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--last', type=int, default=3,
                        help='average the test accuracy of the last N epochs')
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at once (each gets cores / jobs threads)')
    parser.add_argument('--work-dir', default='work_dirs/fashion_mnist_study')
    parser.add_argument(
        '--out', default=None,
        help='the Markdown report (default: WORK_DIR/report.md); a '
        'regeneration keeps what follows its discussion mark')
    parser.add_argument(
        '--no-plot', action='store_true',
        help='draw no training curves of DKS (e.g. when another report of '
        'the same work dir shows them)')
    parser.add_argument(
        '--report-only', action='store_true',
        help='train nothing: report the finished runs in --work-dir (those '
        'with a run.json) and list the requested runs still missing')
    args = parser.parse_args()
    missing = [m for m in args.methods if (m, args.arch) not in CONFIGS]
    if missing:
        parser.error(f'--methods {missing} have no config for --arch '
                     f'{args.arch} in configs/fashion_mnist/')
    if args.out is None:
        args.out = osp.join(args.work_dir, 'report.md')
    seeds = sorted({s for group in args.seeds for s in group})
    args.seeds = {m: seeds for m in args.methods}
    for method, own in args.method_seeds:
        if method not in args.seeds:
            parser.error(f'--method-seeds {method}: not one of --methods')
        args.seeds[method] = sorted(set(own))
    return args


def recipe(args, method: str) -> str:
    """Absolute path of the shipped config of ``method`` for ``--arch``."""
    return osp.join(ROOT, CONFIGS[method, args.arch])


def train_command(args, method: str, seed: int, work_dir: str) -> list:
    config = recipe(args, method)
    if method != 'baseline':
        # Per-branch scores come from one test run after training
        # (branch_errors), not from every validation.
        config = osp.join(work_dir, 'train_config.py')
        with open(config, 'w') as f:
            f.write(f"_base_ = '{recipe(args, method)}'\n"
                    'model = dict(eval_branches=False)\n'
                    "val_evaluator = dict(_delete_=True, type='Accuracy', "
                    'topk=(1, ))\n')
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
            '--work-dir', work_dir, '--cfg-options',
            *train_options(args, seed)]


def train_options(args, seed: int) -> List[str]:
    """The ``--cfg-options`` of a run: its seed, data and schedule."""
    return [
        f'randomness.seed={seed}',
        f'train_dataloader.dataset.indices={args.train_size}',
        f'train_cfg.max_epochs={args.epochs}',
        f'train_cfg.val_begin={args.epochs - args.last + 1}',
    ]


def write_json(path: str, data: dict) -> None:
    """Write ``path`` whole or not at all: a ``run.json`` marks a run
    finished, so a kill mid-write must not leave half of one."""
    with atomic_outputs([path]) as (temp, ):
        with open(temp, 'w') as f:
            json.dump(data, f)


def run_dir(args, method: str, seed: int) -> str:
    # Absolute: the runs' subprocesses work in the repository root.
    return osp.abspath(osp.join(args.work_dir, f'{method}_seed{seed}'))


def finished_run(args, method: str, seed: int) -> Optional[dict]:
    """The ``run.json`` of a finished run, None if it has not finished.

    Raises:
        SystemExit: If the run was trained on other data or another
            schedule than ``args`` describe (a report would mislabel it).
    """
    done = osp.join(run_dir(args, method, seed), 'run.json')
    if not osp.exists(done):
        return None
    with open(done) as f:
        record = json.load(f)
    # val_begin is left out: any --last up to the evaluations logged fits.
    wrong = [option for option in train_options(args, seed)[:3]
             if option not in record['command'].split()]
    if wrong:
        sys.exit(f'error: {done} was not trained with {" ".join(wrong)} '
                 f'(its command: {record["command"]}); pass the '
                 '--train-size and --epochs it was trained with, or another '
                 '--work-dir')
    return record


def interrupted_run(work_dir: str) -> Optional[Tuple[str, float]]:
    """The checkpoint an interrupted run resumes from, and the seconds its
    earlier sessions took to reach it (from the first session's start,
    which MMEngine's timestamped log dir names, to the checkpoint's
    mtime; 0 without such a dir); None if the run has no checkpoint."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.exists(pointer):
        return None
    with open(pointer) as f:
        checkpoint = f.read().strip()
    saved = osp.getmtime(checkpoint)
    sessions = [d for d in os.listdir(work_dir) if TIMESTAMP.fullmatch(d)]
    if not sessions:
        return checkpoint, 0.0
    return checkpoint, saved - time.mktime(
        time.strptime(min(sessions), '%Y%m%d_%H%M%S'))


def run_one(args, method: str, seed: int) -> dict:
    record = finished_run(args, method, seed)
    if record:
        return record
    work_dir = run_dir(args, method, seed)
    done = osp.join(work_dir, 'run.json')
    os.makedirs(work_dir, exist_ok=True)
    cmd = train_command(args, method, seed, work_dir)
    interrupted = interrupted_run(work_dir)
    env = dict(os.environ, PYTHONPATH=ROOT,
               OMP_NUM_THREADS=str(max(1, os.cpu_count() // args.jobs)))
    provenance = run_provenance(ROOT)
    start = time.time()
    with open(osp.join(work_dir, 'stdout.log'),
              'a' if interrupted else 'w') as log:
        subprocess.run(cmd + ['--resume'] * bool(interrupted), env=env,
                       stdout=log, stderr=subprocess.STDOUT, check=True,
                       cwd=ROOT)
    record = dict(method=method, seed=seed, wall_s=time.time() - start,
                  device=device_name(), jobs=args.jobs, **provenance,
                  command=' '.join(cmd[1:]).replace(ROOT + '/', ''))
    if interrupted:
        checkpoint, earlier_s = interrupted
        record.update(resumed_from=osp.basename(checkpoint),
                      wall_s=record['wall_s'] + earlier_s)
    if method != 'baseline':
        # Scored now, while the checkpoint is here: a study moved between
        # machines (logs only) can be reported without it.
        branch_errors(args, method, seed)
    write_json(done, record)
    print(f'{method} seed {seed}: {record["wall_s"]:.0f} s', flush=True)
    return record


def device_name() -> str:
    """What MMEngine's runner trains on here: the first GPU, else CPU."""
    import torch
    if torch.cuda.is_available():
        return f'GPU: {torch.cuda.get_device_name(0)}'
    return f'CPU: {platform.processor() or platform.machine()}, ' \
        f'{os.cpu_count()} cores'


def branch_errors(args, method: str, seed: int) -> Optional[dict]:
    """Test top-1 error of every classifier and of their ensemble, from
    the final checkpoint, scored once with ``BranchAccuracy`` (None with
    ``--report-only`` where it was not scored)."""
    work_dir = run_dir(args, method, seed)
    done = osp.join(work_dir, 'branches.json')
    if not osp.exists(done):
        if args.report_only:
            return None
        config = osp.join(work_dir, 'branches.py')
        with open(config, 'w') as f:
            f.write(f"_base_ = '{recipe(args, method)}'\n"
                    'model = dict(eval_branches=True)\n'
                    "test_evaluator = [dict(type='Accuracy', topk=(1, )), "
                    "dict(type='BranchAccuracy')]\n")
        test_dir = osp.join(work_dir, 'branch_test')
        subprocess.run([
            sys.executable, osp.join(ROOT, 'tools', 'test.py'), config,
            osp.join(work_dir, f'epoch_{args.epochs}.pth'), '--work-dir',
            test_dir
        ], env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(max(glob.glob(osp.join(test_dir, '*', '*.json')))) as f:
            metrics = json.load(f)
        errors = {
            classifier_of(k): 100 - v
            for k, v in metrics.items()
            if k.startswith('branch/') and k.endswith('_top1')
        }
        write_json(done, errors)
    with open(done) as f:
        return json.load(f)


def main_errors(work_dir: str, last: int) -> dict:
    """Main top-1 error: mean of the last ``last`` evaluations, and final."""
    history = val_history(latest_scalars(work_dir), 'accuracy/top1')
    if len(history) < last:
        raise RuntimeError(f'{work_dir} has {len(history)} evaluations, '
                           f'expected {last}')
    return dict(last=100 - sum(v for _, v in history[-last:]) / last,
                final=100 - history[-1][1])


def main() -> None:
    args = parse_args()
    jobs = sorted(((m, s) for m, seeds in args.seeds.items() for s in seeds),
                  key=lambda job: (job[1], args.methods.index(job[0])))
    if not args.report_only:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda job: run_one(args, *job), jobs))
    runs = {job: record for job in jobs
            if (record := finished_run(args, *job)) is not None}
    if not runs:
        sys.exit(f'error: no requested run has finished in {args.work_dir} '
                 '(none has a run.json)')
    errors = {m: {} for m in args.methods}
    branches = {m: {} for m in args.methods if m != 'baseline'}
    for method, seed in runs:
        errors[method][seed] = main_errors(run_dir(args, method, seed),
                                           args.last)
        if method in branches:
            scores = branch_errors(args, method, seed)
            if scores is not None:
                branches[method][seed] = scores
    plot = None
    if errors.get('dks') and not args.no_plot:
        seed = min(errors['dks'])
        plot = osp.splitext(args.out)[0] + f'_dks_seed{seed}.png'
        plot_dks_curves(
            latest_scalars(run_dir(args, 'dks', seed)), plot, force=True)
    missing = [job for job in jobs if job not in runs]
    write_report(args, runs, missing, errors, branches, plot)
    print(f'report: {args.out}')


def seeds_cell(seeds) -> str:
    return f'{seed_ranges(seeds)} ({len(seeds)})'


def write_report(args, runs: dict, missing: list, errors: dict,
                 branches: dict, plot: Optional[str]) -> None:
    lines = [
        '# Fashion-MNIST: baseline vs deep supervision vs DKS', '',
        'Trained on: ' + '; '.join(sorted(
            {provenance_of(r)['device'] for r in runs.values()})) +
        f'; {len(runs)} runs. Report written on {platform.platform()}, '
        f'Python {platform.python_version()}.', ''
    ]
    if missing:
        lines += [f'Not finished (no run.json in {args.work_dir}), so not in '
                  f'this report: {runs_text(missing)}.', '']
    changes = provenance_changes(runs)
    if changes:
        lines += ['The runs differ in what they ran on (each run is listed '
                  'in the last table):', '']
        lines += [f'- {line}' for line in changes] + ['']
    else:
        same = provenance_of(next(iter(runs.values())))
        lines += ['Every run ran on the same code and libraries: ' +
                  ', '.join(f'{PROVENANCE_FIELDS[k]} {same[k]}'
                            for k in PROVENANCE_FIELDS if k != 'device') +
                  '.', '']
    lines += [
        f'Setting: {ARCHS[args.arch]}, 1-channel 28x28 input, first '
        f'{args.train_size} training images, {args.epochs} epochs, batch '
        f'128, SGD + cosine; test top-1 error on all 10,000 test images, as '
        f'the mean of the last {args.last} evaluations (one per epoch) and '
        f'at the final epoch; each method over its own seeds.', '',
        '| method | seeds (n) | error, mean of last evaluations | per seed '
        '| error, final epoch | per seed |', '|---|---|---|---|---|---|'
    ]
    for method, by_seed in errors.items():
        if not by_seed:
            continue
        cells = [seeds_cell(by_seed)]
        for stat in ('last', 'final'):
            per_seed = [by_seed[s][stat] for s in sorted(by_seed)]
            cells += [format_mean_std(per_seed),
                      ', '.join(f'{v:.2f}' for v in per_seed)]
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Paired differences of the top-1 error (points) over the '
              'seeds both methods have: n, mean, standard deviation, 95% '
              't-interval (from 3 pairs), Wilcoxon signed-rank test (from '
              '10 pairs):', '']
    pairs = [(m, 'baseline') for m in errors if m != 'baseline']
    pairs += [('dks', 'ds')] + [(m, 'dks') for m in ABLATIONS]
    for a, b in pairs:
        if not (errors.get(a) and errors.get(b)):
            continue
        for stat in ('last', 'final'):
            diff = paired_difference(
                {s: e[stat] for s, e in errors[a].items()},
                {s: e[stat] for s, e in errors[b].items()})
            lines.append(f'- {a} - {b} ({stat}): {format_difference(diff)}')
        shared = sorted(set(errors[a]) & set(errors[b]))
        compared = {(m, s): runs[m, s] for m in (a, b) for s in shared}
        changes = provenance_changes(compared)
        if changes:
            lines.append('  - the runs compared here differ in ' +
                         '; '.join(changes))
    lines += ['', 'Every classifier of the final checkpoints (test top-1 '
              'error, %, mean +/- std over seeds; ensemble = averaged '
              'probabilities of all classifiers):', '',
              '| method | seeds (n) | ' + ' | '.join(BRANCH_COLUMNS) + ' |',
              '|---|---|' + '---|' * len(BRANCH_COLUMNS)]
    for method, by_seed in branches.items():
        if by_seed:
            cells = [seeds_cell(by_seed)] + [
                format_mean_std([e[c] for e in by_seed.values()])
                for c in BRANCH_COLUMNS]
            lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    if plot:
        lines += ['', f'Training curves of DKS, seed {min(errors["dks"])}: '
                  f'![curves]({osp.basename(plot)})']
    header = ['run', 'device', 'wall time (s)'] + [
        name for key, name in PROVENANCE_FIELDS.items() if key != 'device'
    ] + ['command']
    lines += ['', '| ' + ' | '.join(header) + ' |', '|---' * len(header) +
              '|']
    for (method, seed), r in runs.items():
        text = provenance_of(r)
        # Runs sharing the machine take longer: say how many did.
        notes = [f'{r["jobs"]} at once'] if 'jobs' in r else []
        if 'resumed_from' in r:
            notes.append(f'resumed from {r["resumed_from"]}')
        shared = f' ({"; ".join(notes)})' if notes else ''
        cells = [f'{method} seed {seed}', text.pop('device'),
                 f'{r["wall_s"]:.0f}{shared}', *text.values(),
                 f'`python {r["command"]}`']
        lines.append('| ' + ' | '.join(cells) + ' |')
    # Hand-written discussion below NOTES_MARK survives a regeneration.
    notes = ''
    if osp.exists(args.out):
        with open(args.out) as f:
            old = f.read()
        if NOTES_MARK in old:
            notes = old[old.index(NOTES_MARK):]
    with atomic_outputs([args.out]) as (temp, ):
        with open(temp, 'w') as f:
            f.write('\n'.join(lines) + '\n\n' + notes)


if __name__ == '__main__':
    main()
