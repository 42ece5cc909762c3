"""Command-line options shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from typing import Optional

from mmengine.config import Config

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def set_work_dir(cfg: Config, work_dir: Optional[str],
                 config_path: str) -> None:
    """Work dir priority: command line, then config, then
    ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def set_dataloader_defaults(cfg: Config,
                            pin_memory: bool = True,
                            persistent_workers: bool = True) -> None:
    """Fill in the dataloader options MMPretrain's tools default to.

    ``persistent_workers`` is only enabled where ``num_workers > 0``:
    PyTorch refuses it otherwise.
    """
    for field in DATALOADERS:
        loader = cfg.get(field)
        if loader is None:
            continue
        loader.setdefault('pin_memory', pin_memory)
        loader.setdefault('persistent_workers', persistent_workers
                          and loader.get('num_workers', 0) > 0)
        loader.setdefault('collate_fn', dict(type='default_collate'))


def init_cpu_distributed(launcher: str, cfg: Config) -> None:
    """Make ``--launcher pytorch`` work on a machine without GPUs.

    MMEngine 0.10.7 calls ``torch.cuda.set_device`` before creating the
    process group and wraps the model in DDP with a CUDA ``device_ids``; both
    fail without CUDA. The runner skips its own set-up when a group exists,
    so create it here with the configured backend (which must be ``gloo``)
    and let DDP run on the CPU module.
    """
    import torch
    import torch.distributed as dist
    if launcher != 'pytorch' or torch.cuda.is_available():
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    if backend != 'gloo':
        raise ValueError(
            f'env_cfg.dist_cfg.backend={backend!r} needs GPUs; without them '
            'use --cfg-options env_cfg.dist_cfg.backend=gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
