"""The one-command demo: DKS on Fashion-MNIST, from data to a head-free
model tested by vanilla MMPretrain.

Prepares Fashion-MNIST, trains a CIFAR-style ResNet-14 with DKS (MMEngine's
log shows progress and ETA), scores every classifier on the 10k test images,
plots the curves, strips the auxiliary branches and tests the stripped
checkpoint with ``mim test mmpretrain``, then prints a summary table.
Run it through ``bash tools/demo.sh``, which installs what is missing.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'fashion_mnist',
                  'dks_resnet14_1xb128_fashion-mnist.py')
# What a run leaves in --work-dir besides MMEngine's work dirs.
RESULTS = ('curves.png', 'deploy')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='DKS on Fashion-MNIST')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/fashion_mnist')
    parser.add_argument('--train-size', type=int, default=20000,
                        help='first N training images')
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument(
        '--force', action='store_true',
        help="replace an earlier demo's results in --work-dir")
    args = parser.parse_args()
    from mmdks.utils import refuse_existing
    refuse_existing(parser,
                    [osp.join(args.work_dir, name) for name in RESULTS],
                    args.force, 'another --work-dir',
                    "an earlier demo's results")
    return args


def run(cmd: list) -> str:
    """Run a command, streaming its output, and return that output."""
    print('+', ' '.join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    lines = []
    for line in proc.stdout:
        if 'mmengine - ' in line or line.startswith(('error', 'Traceback')):
            print(line, end='', flush=True)
        lines.append(line)
    if proc.wait() != 0:
        sys.exit(f'error: {cmd[1]} failed:\n' + ''.join(lines[-30:]))
    return ''.join(lines)


def main() -> None:
    args = parse_args()
    from mmdks.apis import strip_checkpoint
    from mmdks.data_preparation import prepare_fashion_mnist
    from mmdks.structures import MAIN, classifier_of, classifier_order
    from mmdks.utils import latest_scalars, val_history
    from mmdks.visualization import plot_dks_curves

    work_dir = osp.abspath(args.work_dir)
    data_root = osp.abspath(args.data_root)
    os.makedirs(work_dir, exist_ok=True)
    for name, done in prepare_fashion_mnist(data_root):
        print(f'{name}: {done}')

    # The demo's schedule and data path on top of the shipped config.
    config = osp.join(work_dir, 'dks_resnet14_demo.py')
    with open(config, 'w') as f:
        f.write(f"_base_ = '{CONFIG}'\n"
                f"train_dataloader = dict(dataset=dict(data_root='{data_root}'"
                f', indices={args.train_size}))\n'
                f"val_dataloader = dict(dataset=dict(data_root='{data_root}'))"
                '\ntest_dataloader = val_dataloader\n'
                f'train_cfg = dict(max_epochs={args.epochs})\n'
                'default_hooks = dict(logger=dict(interval=20))\n')
    train_dir = osp.join(work_dir, 'train')
    run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
         '--work-dir', train_dir])
    records = latest_scalars(train_dir)
    branch_keys = sorted({k for r in records for k in r
                          if k.startswith('branch/') and k.endswith('_top1')})
    final = {k: val_history(records, k)[-1][1] for k in branch_keys}
    plot = osp.join(work_dir, 'curves.png')
    plot_dks_curves(records, plot, force=True)

    with open(osp.join(train_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    deploy = osp.join(work_dir, 'deploy')
    summary = strip_checkpoint(config, checkpoint, deploy, force=True)
    out = run(['mim', 'test', 'mmpretrain', summary['outputs']['config'],
               '--checkpoint', summary['outputs']['checkpoint'],
               '--work-dir', osp.join(work_dir, 'test_plain'),
               '--cfg-options', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False'])
    stripped = float(re.findall(r'accuracy/top1: ([0-9.]+)', out)[-1])

    rows = sorted(((classifier_of(k), v) for k, v in final.items()),
                  key=lambda row: classifier_order(row[0]))
    print('\n| classifier | test top-1 (%) |\n|---|---|')
    for name, value in rows:
        print(f'| {name} | {value:.2f} |')
    print(f'| stripped (vanilla MMPretrain) | {stripped:.2f} |')
    print(f"\nparameters: {summary['params_before']:,} in training, "
          f"{summary['params_after']:,} deployed")
    print(f'curves: {plot}\ndeployed model: {deploy}')
    # Compare correct-image counts (top-1 x 100 on the 10,000 test images):
    # the logged value is a float32, the printed one has 4 decimals.
    main_top1 = final.get(f'branch/{MAIN}_top1')
    if main_top1 is None or round(main_top1 * 100) != round(stripped * 100):
        sys.exit(f'error: stripped top-1 {stripped} differs from the main '
                 f'classifier {main_top1}')


if __name__ == '__main__':
    main()
