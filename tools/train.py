"""Train a model with MMEngine's runner, the same way MMPretrain's
``tools/train.py`` does, with mmdks imported (its modules registered, every
checkpoint loaded with torch's safe loader), the checkpoint to start from
checked, a stop on a NaN loss, epochs seeded for an exact resume and the
synergy loss's warm-up driven where it has one."""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdks  # noqa: F401  registers DKS modules and the safe loader
from mmdks.apis import (CheckpointError, auto_resume_checkpoint,
                        check_checkpoint_fits)
from mmdks.engine import (EpochSeedHook, FiniteLossHook, NonFiniteLossError,
                          SynergyWarmupHook)
from mmdks.models.losses import SynergyLoss
from mmdks.utils import (add_error_arguments, init_cpu_distributed,
                         one_line_errors, set_dataloader_defaults,
                         set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint (a file or URL), or without a '
        'path from the one WORK_DIR/last_checkpoint names')
    parser.add_argument(
        '--amp', action='store_true', help='mixed-precision training')
    parser.add_argument(
        '--no-validate', action='store_true', help='skip validation')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by actual / base batch size')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable pin_memory in the dataloaders')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable persistent_workers in the dataloaders')
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
    # torch.distributed.launch passes --local-rank (torch >= 2.0).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line options to the config."""
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.work_dir, args.config)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('resume') and not cfg.get('load_from'):
        # MMEngine's auto-resume, resolved here so that the file is checked.
        cfg.load_from = auto_resume_checkpoint(cfg.work_dir)
    set_dataloader_defaults(cfg, not args.no_pin_memory,
                            not args.no_persistent_workers)
    return cfg


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        cfg = apply_args(Config.fromfile(args.config), args)
        init_cpu_distributed(args.launcher, cfg)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
        if cfg.get('load_from'):
            check_checkpoint_fits(runner.model, cfg.load_from,
                                  args.allow_nonfinite)
    hooks = [FiniteLossHook(), EpochSeedHook()]
    # warmup_iters needs its hook; a config that sets one needs no more.
    if any(isinstance(m, SynergyLoss) and m.warmup_iters
           for m in runner.model.modules()):
        hooks.append(SynergyWarmupHook())
    for hook in hooks:
        if not any(isinstance(h, type(hook)) for h in runner.hooks):
            runner.register_hook(hook)
    with one_line_errors(args.debug, (CheckpointError, NonFiniteLossError)):
        runner.train()


if __name__ == '__main__':
    main()
