"""Test a checkpoint with MMEngine's runner, as MMPretrain's
``tools/test.py`` does, with mmdks imported and the checkpoint checked
first."""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdks  # noqa: F401  registers DKS modules and the safe loader
from mmdks.apis import CheckpointError, check_checkpoint_fits
from mmdks.utils import (add_error_arguments, init_cpu_distributed,
                         one_line_errors, set_dataloader_defaults,
                         set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--work-dir', help='where to save logs and metrics')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (lists: key="[a,b]")')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    add_error_arguments(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        cfg = Config.fromfile(args.config)
        cfg.launcher = args.launcher
        set_work_dir(cfg, args.work_dir, args.config)
        cfg.load_from = args.checkpoint
        if args.cfg_options is not None:
            cfg.merge_from_dict(args.cfg_options)
        set_dataloader_defaults(cfg)
        init_cpu_distributed(args.launcher, cfg)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
        check_checkpoint_fits(runner.model, args.checkpoint,
                              args.allow_nonfinite)
    if args.out:
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    with one_line_errors(args.debug, (CheckpointError, )):
        runner.test()


if __name__ == '__main__':
    main()
