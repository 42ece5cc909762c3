"""Test a checkpoint with MMEngine's runner, as MMPretrain's
``tools/test.py`` does (same options), with mmdks imported and the
checkpoint checked first."""
import argparse
import os

import mmengine
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.model import BaseTTAModel
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdks  # noqa: F401  registers DKS modules and the safe loader
from mmdks.apis import CheckpointError, check_checkpoint_fits
from mmdks.utils import (add_error_arguments, init_cpu_distributed,
                         one_line_errors, refuse_existing,
                         set_dataloader_defaults, set_tta, set_visualization,
                         set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--work-dir', help='where to save logs and metrics')
    parser.add_argument(
        '--out', help='dump the predictions (or --out-item) to this file')
    parser.add_argument(
        '--force', action='store_true', help='replace an existing --out')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='what --out holds: the predictions (pred, the default, a '
        'pickle) or the metrics (any format mmengine.dump writes)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (lists: key="[a,b]")')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='test with automatic mixed precision (bfloat16 on a CPU)')
    parser.add_argument(
        '--show-dir', help='draw the predictions into images in this dir')
    parser.add_argument(
        '--show',
        action='store_true',
        help='show the predictions in a window (needs a display)')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='draw or show every N-th image (1)')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='seconds each --show window stays (2)')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='do not pin dataloader memory')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_model and "
        'tta_pipeline, else the mean score of each image and its flip')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    add_error_arguments(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.out_item is not None and args.out is None:
        parser.error('--out-item needs --out FILE')
    if args.out:
        refuse_existing(parser, [args.out], args.force, 'another --out')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_test_options(cfg: Config, args: argparse.Namespace) -> None:
    """The options of MMPretrain's test tool that change the config."""
    if args.amp:
        cfg.test_cfg.fp16 = True
    set_visualization(cfg, args.show, args.show_dir, args.interval,
                      args.wait_time)
    if args.tta:
        set_tta(cfg)


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        cfg = Config.fromfile(args.config)
        cfg.launcher = args.launcher
        set_work_dir(cfg, args.work_dir, args.config)
        cfg.load_from = args.checkpoint
        apply_test_options(cfg, args)
        if args.cfg_options is not None:
            cfg.merge_from_dict(args.cfg_options)
        set_dataloader_defaults(cfg, pin_memory=not args.no_pin_memory)
        init_cpu_distributed(args.launcher, cfg)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
        # --tta wraps the model; the checkpoint is the wrapped model's.
        model = runner.model.module \
            if isinstance(runner.model, BaseTTAModel) else runner.model
        check_checkpoint_fits(model, args.checkpoint, args.allow_nonfinite)
        if args.out and args.out_item != 'metrics':
            # Refuses an --out that is not a pickle, in one line.
            runner.test_evaluator.metrics.append(
                DumpResults(out_file_path=args.out))
    with one_line_errors(args.debug, (CheckpointError, )):
        metrics = runner.test()
    if args.out and args.out_item == 'metrics':
        mmengine.dump(metrics, args.out)


if __name__ == '__main__':
    main()
