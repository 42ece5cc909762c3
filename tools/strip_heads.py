"""Drop the DKS training-only modules from a checkpoint and write a plain
MMPretrain model (checkpoint + config, optionally ONNX).

    python tools/strip_heads.py CONFIG CHECKPOINT OUT_DIR [--force] [--ema]
        [--onnx [--shape H W]] [--cfg-options KEY=VALUE ...]
        [--allow-nonfinite] [--debug]
"""
import argparse
import sys

from mmengine.config import DictAction

from mmdks.apis import strip_checkpoint
from mmdks.utils import add_error_arguments, one_line_errors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Strip the DKS auxiliary branches from a checkpoint')
    parser.add_argument('config', help='the DKS config it was trained with')
    parser.add_argument('checkpoint', help='the DKS checkpoint')
    parser.add_argument('out_dir', help='where to write <name>_plain.*')
    parser.add_argument(
        '--force', action='store_true', help='replace existing outputs')
    parser.add_argument(
        '--ema',
        action='store_true',
        help="require and export the EMA weights of MMEngine's EMAHook")
    parser.add_argument(
        '--onnx', action='store_true', help='also export and check ONNX')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='ONNX input size (default: the test pipeline crop size)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='the overrides the run was trained with, key=value (lists: '
        'key="[a,b]"); the plain config gets them too')
    add_error_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with one_line_errors(args.debug):
        summary = strip_checkpoint(
            args.config,
            args.checkpoint,
            args.out_dir,
            force=args.force,
            ema=args.ema,
            onnx=args.onnx,
            shape=args.shape,
            allow_nonfinite=args.allow_nonfinite,
            cfg_options=args.cfg_options)
    before, after = summary['params_before'], summary['params_after']
    print(f'params: {before:,} -> {after:,} ({before - after:,} dropped)')
    weights = 'the EMA weights (state_dict of an EMAHook run)' \
        if summary['weights'] == 'ema' else 'the trained weights (state_dict)'
    print(f"dropped {summary['dropped_keys']} keys under "
          f"{', '.join(summary['dropped_prefixes'])}; exported {weights}")
    for problem in summary['aux_mismatch']:
        print(f'note: the dropped part differs from CONFIG: {problem}')
    if summary['onnx_max_abs_diff'] is not None:
        print('onnxruntime vs PyTorch max abs logit difference: '
              f"{summary['onnx_max_abs_diff']:.2e}")
    if summary['needs_mmdks']:
        print('note: the backbone is mmdks\'s own (no MMPretrain twin), so '
              'the plain config keeps custom_imports of mmdks')
    for kind, path in summary['outputs'].items():
        print(f'{kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
