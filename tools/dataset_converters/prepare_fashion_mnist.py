"""Write Fashion-MNIST's four un-gzipped idx files where MMPretrain's
``FashionMNIST`` reads them, verified by md5 and idx header.

    python tools/dataset_converters/prepare_fashion_mnist.py [--src DIR]
        [--out data/fashion_mnist] [--no-download] [--force]

Debian's ``dataset-fashion-mnist`` is used when installed; this does not
install it (``apt-get install dataset-fashion-mnist``; ``tools/demo.sh``
does, as root).
"""
import argparse
import sys

from mmdks.data_preparation import FashionMNISTError, prepare_fashion_mnist


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Prepare Fashion-MNIST for MMPretrain')
    parser.add_argument(
        '--src',
        help='dir with the four files (.gz or raw); default: Debian\'s '
        'dataset-fashion-mnist package if installed, else a download')
    parser.add_argument(
        '--out',
        default='data/fashion_mnist',
        help='data_root to write (data/fashion_mnist)')
    parser.add_argument(
        '--no-download',
        action='store_true',
        help='fail instead of downloading when no local source has them')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace files in --out that fail the check')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        done = prepare_fashion_mnist(
            args.out,
            src_dir=args.src,
            download=not args.no_download,
            force=args.force)
    except (FashionMNISTError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for name, what in done:
        print(f'{name}: {what}')
    print(f'Fashion-MNIST is ready in {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
