"""Command-line options shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict

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


def set_visualization(cfg: Config,
                      show: bool = False,
                      show_dir: Optional[str] = None,
                      interval: int = 1,
                      wait_time: float = 2) -> None:
    """Turn on the config's ``VisualizationHook`` for ``--show`` (a window
    per image, which needs a display) and ``--show-dir`` (images drawn to
    files), as MMPretrain's test tool does; nothing without either.

    Raises:
        ValueError: If the config has no ``default_hooks.visualization``.
    """
    if not (show or show_dir):
        return
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError(
            '--show and --show-dir need a VisualizationHook: add '
            "default_hooks.visualization=dict(type='VisualizationHook') to "
            'the config')
    hook.update(
        enable=True,
        show=show,
        out_dir=show_dir,
        interval=interval,
        wait_time=wait_time)


def set_tta(cfg: Config) -> None:
    """Wrap the model for test-time augmentation, as MMPretrain's test tool
    does: the config's ``tta_model`` and ``tta_pipeline`` if it has them,
    else the average of the scores of each image and its flip.

    The TTA model averages ``pred_score`` only: other fields (a DKS model's
    ``branch_scores`` under ``eval_branches``) are those of the first view.
    """
    tta_model = cfg.get('tta_model',
                        dict(type='mmpretrain.AverageClsScoreTTA'))
    pipeline = cfg.test_dataloader.dataset.pipeline
    if 'tta_pipeline' not in cfg:
        flip = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ], [pipeline[-1]]])
        cfg.tta_pipeline = pipeline[:-1] + [flip]
    cfg.model = ConfigDict(**tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
