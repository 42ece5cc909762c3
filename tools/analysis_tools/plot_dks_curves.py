"""Plot the loss terms and per-branch validation accuracy of a DKS run.

    python tools/analysis_tools/plot_dks_curves.py WORK_DIR [--out curves.png]
        [--force]

Reads MMEngine's JSON scalar log (LocalVisBackend, the default) or, for a
run logged with TensorboardVisBackend only, its event files (needs
tensorboard); a run resumed into its work dir is read across its sessions.
"""
import argparse
import sys

from mmdks.utils import load_run_scalars, one_line_errors
from mmdks.visualization import plot_dks_curves


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot DKS training curves from a work dir')
    parser.add_argument('work_dir', help='the --work-dir of the run')
    parser.add_argument(
        '--out', default='curves.png', help='PNG to write (curves.png)')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing --out')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with one_line_errors(False, (ImportError, OSError, ValueError)):
        logs, records = load_run_scalars(args.work_dir)
        plotted = plot_dks_curves(records, args.out, args.force)
    print(f"read {', '.join(logs)}")
    print(f"losses: {', '.join(plotted['loss']) or 'none'}")
    print(f"validation: {', '.join(plotted['val']) or 'none'}")
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
