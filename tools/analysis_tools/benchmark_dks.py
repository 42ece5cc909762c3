"""Benchmark DKS against deep supervision (alpha = 0) and the plain
MMPretrain model, in one process and one run, and check the cost targets.

Example::

    python tools/analysis_tools/benchmark_dks.py \\
        configs/dks_resnet18_8xb32_in1k.py --batch-size 16 --input-size 64 \\
        --blocks 5 --block-steps 3 --out work_dirs/bench_r18.json
"""
import argparse

from mmengine.config import DictAction

from mmdks.analysis.benchmark import VARIANTS
from mmdks.analysis.benchmark_report import (PRECISIONS, BenchmarkOptions,
                                             markdown, report_paths,
                                             run_benchmark, save)
from mmdks.utils import refuse_existing


def parse_args() -> argparse.Namespace:
    defaults = BenchmarkOptions()
    parser = argparse.ArgumentParser(description='Benchmark DKS')
    parser.add_argument('config', help='a DKS config')
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--input-size', type=int,
                        default=defaults.input_size)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--precision', default='fp32', choices=PRECISIONS,
                        help='amp: under autocast (CUDA); both: fp32 and amp')
    parser.add_argument('--blocks', type=int, default=defaults.blocks,
                        help='alternating blocks each step is timed in')
    parser.add_argument('--block-steps', type=int,
                        default=defaults.block_steps,
                        help='steps of each kind in a block')
    parser.add_argument('--gpu-steps', type=int, default=defaults.gpu_steps,
                        help='steps profiled for the GPU busy time (CUDA)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS,
                        help='models to train beside dks (always timed)')
    parser.add_argument(
        '--compile-loss', action='store_true',
        help='torch.compile the synergy loss of the DKS and DS models')
    parser.add_argument(
        '--compile-step', nargs='+', default=[], metavar='MODE',
        help="also time the whole DKS step under torch.compile: 'default' "
        "(MMEngine's compile=True), 'reduce-overhead' (with CUDA graphs), "
        'or another torch.compile mode')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, as training does (key=value)')
    parser.add_argument('--out', default=None,
                        help='JSON report; a Markdown twin is written beside')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing report')
    args = parser.parse_args()
    if args.out:
        refuse_existing(parser, report_paths(args.out), args.force,
                        'another --out')
    return args


def main() -> None:
    args = parse_args()
    opts = BenchmarkOptions(
        batch_size=args.batch_size, input_size=args.input_size,
        device=args.device, precision=args.precision, blocks=args.blocks,
        block_steps=args.block_steps, gpu_steps=args.gpu_steps,
        variants=args.variants, compile_loss=args.compile_loss,
        compile_step=args.compile_step, cfg_options=args.cfg_options)
    report = run_benchmark(args.config, opts)
    text = markdown(report)
    print(text)
    if args.out:
        save(report, text, args.out)


if __name__ == '__main__':
    main()
