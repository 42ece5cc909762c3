"""What only a CUDA machine can check: SyncBN across two processes, AMP
training, and the fused synergy loss compiled for the GPU. Skipped where
no GPU is present (CI); run on purpose with ``pytest tests/test_gpu.py`` on
a GPU machine."""
import os
import os.path as osp
import subprocess

import pytest
import torch

from helpers import REPO_ROOT
from mmdks.models.losses import SynergyLoss, synergy_loss
from test_fused_synergy import SETTINGS, assert_fused_matches_eager
from test_reliability import (ENV, TRAIN, load, run, write_rank_dump_config,
                              write_small_config)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU')


def train_two_ranks_on_one_gpu(cfg: str, work_dir: str, pythonpath: str,
                               port: int) -> None:
    """``tools/train.py --launcher pytorch`` in two processes, as torchrun
    starts them, except that both ranks get LOCAL_RANK=0: this machine has
    one GPU, which MMEngine would otherwise not let rank 1 select."""
    procs = []
    for rank in range(2):
        env = dict(ENV, PYTHONPATH=pythonpath, RANK=str(rank),
                   LOCAL_RANK='0', WORLD_SIZE='2', LOCAL_WORLD_SIZE='2',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        procs.append(subprocess.Popen(
            TRAIN + [cfg, '--launcher', 'pytorch', '--work-dir', work_dir],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]


@pytest.mark.parametrize('norm, synced', [('SyncBN', True), ('BN', False)])
def test_syncbn_branches_under_two_processes(norm, synced, imagenet_folder,
                                             tmp_path):
    """With SyncBN each rank normalises with the statistics of both ranks'
    images, so the running statistics agree across ranks; with BN (the
    control) they do not, as each rank sees other images."""
    cfg = write_rank_dump_config(
        tmp_path, imagenet_folder,
        f"model = dict(backbone=dict(norm_cfg=dict(type='{norm}')))\n")
    train_two_ranks_on_one_gpu(cfg, str(tmp_path / 'work'),
                               f'{tmp_path}:{REPO_ROOT}',
                               29531 + int(synced))
    ranks = [torch.load(str(tmp_path / f'rank{r}.pt')) for r in range(2)]
    meta = ranks[0]['meta']
    assert meta['device'] == 'cuda'
    assert meta['norms'] == (['SyncBatchNorm'] if synced else ['BatchNorm2d'])
    for key in meta['params']:
        assert torch.equal(ranks[0]['state'][key], ranks[1]['state'][key]), key
    branch_stats = [
        k for k in ranks[0]['state']
        if k.startswith('aux_neck.') and k.endswith('running_mean')
    ]
    assert branch_stats
    for key in branch_stats:
        a, b = ranks[0]['state'][key], ranks[1]['state'][key]
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6) == synced, key


def test_amp_training_and_resume_on_cuda(imagenet_folder, tmp_path):
    cfg = write_small_config(tmp_path / 'cfg.py', imagenet_folder,
                             max_epochs=2)
    work = str(tmp_path / 'work')
    first = run(TRAIN + [cfg, '--amp', '--work-dir', work,
                         '--cfg-options', 'train_cfg.max_epochs=1'])
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = load(osp.join(work, 'epoch_1.pth'))
    # AmpOptimWrapper saves its loss scaler beside the SGD state.
    assert 'loss_scaler' in ckpt['optimizer']
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if v.is_floating_point())
    resumed = run(TRAIN + [cfg, '--amp', '--resume', '--work-dir', work])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 1' in (resumed.stdout + resumed.stderr)
    final = load(osp.join(work, 'epoch_2.pth'))
    assert final['meta']['epoch'] == 2
    assert any(not torch.equal(ckpt['state_dict'][k], final['state_dict'][k])
               for k in ckpt['state_dict'] if k.startswith('aux_neck.'))
    assert os.path.exists(osp.join(work, 'last_checkpoint'))


@pytest.mark.parametrize('setting', SETTINGS)
def test_fused_synergy_loss_matches_eager(setting):
    # A DKS ResNet's classifiers: K = 4, a batch of 64, ImageNet's classes.
    assert_fused_matches_eager((4, 64, 1000), 'cuda', *setting)


@pytest.mark.parametrize('shape', [(2, 8, 10), (6, 32, 5000),
                                   (3, 128, 21843)])
@pytest.mark.parametrize('pairs,eps', [('dense', 0.0), ('top_down', 1e-8)])
def test_fused_synergy_loss_matches_eager_on_other_shapes(shape, pairs, eps):
    assert_fused_matches_eager(shape, 'cuda', pairs, 1.5, eps,
                               torch.float32)


def test_cuda_logits_take_the_fused_loss_with_fused_none(monkeypatch):
    fused = synergy_loss.fused_pairwise_kl()
    assert fused is not None, "Triton comes with torch's CUDA builds"
    calls = []
    monkeypatch.setattr(synergy_loss, 'fused_pairwise_kl',
                        lambda: calls.append(1) or fused)
    SynergyLoss(fused=None)(torch.randn(3, 8, 10, device='cuda'))
    assert calls
