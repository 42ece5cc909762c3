"""Convert a DKS ImageNet model released by the paper's authors (a
torchvision ResNet state dict, keys prefixed ``module.``) to a plain
MMPretrain checkpoint, with a test config that evaluates it as the authors
did.

    python tools/model_converters/dks_official_to_mmpretrain.py SRC DST.pth
        [--force]

Writes DST.pth and DST.py; test with
``mim test mmpretrain DST.py --checkpoint DST.pth``.
"""
import argparse
import sys

from mmdks.converters import convert_dks_official
from mmdks.utils import one_line_errors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released DKS ResNet to MMPretrain')
    parser.add_argument('src', help='the released model (.pth)')
    parser.add_argument(
        'dst', help='the MMPretrain checkpoint to write (.pth); its test '
        'config goes beside it (.py)')
    parser.add_argument(
        '--force', action='store_true', help='replace existing outputs')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # ValueError includes CheckpointError; OSError existing outputs.
    with one_line_errors(False, (ValueError, OSError)):
        summary = convert_dks_official(args.src, args.dst, args.force)
    outputs = summary['outputs']
    print(f"ResNet-{summary['depth']}: {summary['num_keys']} tensors")
    for kind, path in outputs.items():
        print(f'{kind}: {path}')
    print(f"test: mim test mmpretrain {outputs['config']} --checkpoint "
          f"{outputs['checkpoint']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
