"""Seeded baseline / DS / DKS study on Fashion-MNIST.

Trains every method for every seed (the same seed gives every method the
same data order and augmentation, and the same main-path initialisation),
scores every DS/DKS classifier on the test set, and writes a Markdown
report with mean +/- std top-1 error, the paired differences' 95% intervals
and the wall time of each run. Finished runs are kept and skipped on a
re-run, so the study can be resumed.

Example::

    python tools/analysis_tools/fashion_mnist_study.py --seeds 0 1 2 \\
        --train-size 4000 --epochs 5 --jobs 2 --out docs/results.md
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

from mmdks.analysis import (format_difference, format_mean_std,
                            paired_difference, run_provenance)
from mmdks.utils import latest_scalars, val_history
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

BRANCH_COLUMNS = ('branch_1', 'branch_2', 'main', 'ensemble')
NOTES_MARK = '<!-- discussion -->'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS + ABLATIONS)
    parser.add_argument('--arch', default='resnet14', choices=list(ARCHS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--train-size', type=int, default=4000,
                        help='first N training images (all 10k test images '
                        'are always used)')
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--last', type=int, default=3,
                        help='average the test accuracy of the last N epochs')
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at once (each gets cores / jobs threads)')
    parser.add_argument('--work-dir', default='work_dirs/fashion_mnist_study')
    parser.add_argument('--out', default='docs/results.md')
    parser.add_argument(
        '--no-plot', action='store_true',
        help='draw no training curves of DKS seed 0 (e.g. when another '
        'report of the same work dir shows them)')
    args = parser.parse_args()
    missing = [m for m in args.methods if (m, args.arch) not in CONFIGS]
    if missing:
        parser.error(f'--methods {missing} have no config for --arch '
                     f'{args.arch} in configs/fashion_mnist/')
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
    options = [
        f'randomness.seed={seed}',
        f'train_dataloader.dataset.indices={args.train_size}',
        f'train_cfg.max_epochs={args.epochs}',
        f'train_cfg.val_begin={args.epochs - args.last + 1}',
    ]
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
            '--work-dir', work_dir, '--cfg-options', *options]


def run_one(args, method: str, seed: int) -> dict:
    work_dir = osp.join(args.work_dir, f'{method}_seed{seed}')
    done = osp.join(work_dir, 'run.json')
    if osp.exists(done):
        with open(done) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    cmd = train_command(args, method, seed, work_dir)
    env = dict(os.environ, PYTHONPATH=ROOT,
               OMP_NUM_THREADS=str(max(1, os.cpu_count() // args.jobs)))
    provenance = run_provenance(ROOT)
    start = time.time()
    with open(osp.join(work_dir, 'stdout.log'), 'w') as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True, cwd=ROOT)
    record = dict(method=method, seed=seed, wall_s=time.time() - start,
                  device=device_name(), jobs=args.jobs, **provenance,
                  command=' '.join(cmd[1:]).replace(ROOT + '/', ''))
    if method != 'baseline':
        # Scored now, while the checkpoint is here: a study moved between
        # machines (logs only) can be reported without it.
        branch_errors(args, method, seed)
    with open(done, 'w') as f:
        json.dump(record, f)
    print(f'{method} seed {seed}: {record["wall_s"]:.0f} s', flush=True)
    return record


def device_name() -> str:
    """What MMEngine's runner trains on here: the first GPU, else CPU."""
    import torch
    if torch.cuda.is_available():
        return f'GPU: {torch.cuda.get_device_name(0)}'
    return f'CPU: {platform.processor() or platform.machine()}, ' \
        f'{os.cpu_count()} cores'


def branch_errors(args, method: str, seed: int) -> dict:
    """Test top-1 error of every classifier and of their ensemble, from
    the final checkpoint, scored once with ``BranchAccuracy``."""
    work_dir = osp.join(args.work_dir, f'{method}_seed{seed}')
    done = osp.join(work_dir, 'branches.json')
    if not osp.exists(done):
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
            k.split('/', 1)[1][:-len('_top1')]: 100 - v
            for k, v in metrics.items() if k.startswith('branch/')
        }
        with open(done, 'w') as f:
            json.dump(errors, f)
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
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda job: run_one(args, *job), jobs))
    errors = {
        m: [main_errors(osp.join(args.work_dir, f'{m}_seed{s}'), args.last)
            for s in args.seeds]
        for m in args.methods
    }
    branches = {
        m: [branch_errors(args, m, s) for s in args.seeds]
        for m in args.methods if m != 'baseline'
    }
    plot = None
    if 'dks' in args.methods and not args.no_plot:
        plot = osp.splitext(args.out)[0] + '_dks_seed0.png'
        plot_dks_curves(
            latest_scalars(
                osp.join(args.work_dir, f'dks_seed{args.seeds[0]}')),
            plot, force=True)
    write_report(args, runs, errors, branches, plot)
    print(f'report: {args.out}')


def write_report(args, runs, errors, branches, plot: str) -> None:
    lines = [
        '# Fashion-MNIST: baseline vs deep supervision vs DKS', '',
        'Trained on: ' + '; '.join(sorted({r.get('device', '?')
                                           for r in runs})) +
        f'; {len(runs)} runs. Report written on {platform.platform()}, '
        f'Python {platform.python_version()}.', '',
        f'Setting: {ARCHS[args.arch]}, 1-channel 28x28 input, first '
        f'{args.train_size} training images, {args.epochs} epochs, batch '
        f'128, SGD + cosine; test top-1 error on all 10,000 test images, as '
        f'the mean of the last {args.last} evaluations (one per epoch) and '
        f'at the final epoch; seeds {args.seeds}.', '',
        '| method | error, mean of last evaluations | per seed | '
        'error, final epoch | per seed |', '|---|---|---|---|---|'
    ]
    for method, values in errors.items():
        cells = []
        for stat in ('last', 'final'):
            per_seed = [v[stat] for v in values]
            cells += [format_mean_std(per_seed),
                      ', '.join(f'{v:.2f}' for v in per_seed)]
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Paired differences (same seed) of the top-1 error, in '
              'points: n, mean, standard deviation, 95% t-interval:', '']
    pairs = [(m, 'baseline') for m in errors if m != 'baseline']
    pairs += [('dks', 'ds')] + [(m, 'dks') for m in ABLATIONS]
    for a, b in pairs:
        if a in errors and b in errors:
            for stat in ('last', 'final'):
                d = paired_difference(
                    dict(zip(args.seeds, [v[stat] for v in errors[a]])),
                    dict(zip(args.seeds, [v[stat] for v in errors[b]])))
                lines.append(f'- {a} - {b} ({stat}): {format_difference(d)}')
    lines += ['', 'Every classifier of the final checkpoints (test top-1 '
              'error, %, mean +/- std over seeds; ensemble = averaged '
              'probabilities of all classifiers):', '',
              '| method | ' + ' | '.join(BRANCH_COLUMNS) + ' |',
              '|---|' + '---|' * len(BRANCH_COLUMNS)]
    for method, per_seed in branches.items():
        cells = [format_mean_std([e[c] for e in per_seed])
                 for c in BRANCH_COLUMNS]
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    if plot:
        lines += ['', f'Training curves of DKS, seed {args.seeds[0]}: '
                  f'![curves]({osp.basename(plot)})']
    lines += ['', '| run | wall time (s) | command |', '|---|---|---|']
    for r in runs:
        # Runs sharing the machine take longer: say how many did.
        shared = f' ({r["jobs"]} at once)' if 'jobs' in r else ''
        lines.append(f'| {r["method"]} seed {r["seed"]} | {r["wall_s"]:.0f}'
                     f'{shared} | `python {r["command"]}` |')
    # Hand-written discussion below NOTES_MARK survives a regeneration.
    notes = ''
    if osp.exists(args.out):
        with open(args.out) as f:
            old = f.read()
        if NOTES_MARK in old:
            notes = old[old.index(NOTES_MARK):]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines) + '\n\n' + notes)


if __name__ == '__main__':
    main()
