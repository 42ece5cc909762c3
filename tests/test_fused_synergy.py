"""The Triton synergy loss against the eager closed form it replaces on
CUDA: here on the CPU under Triton's interpreter (small shapes, a few
seconds); tests/test_gpu.py runs the same comparison compiled on a GPU."""
import itertools
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import REPO_ROOT
from mmdks.models.losses import PAIR_MODES, SynergyLoss, synergy_loss

pytest.importorskip('triton')
# tests/conftest.py sets it where there is no GPU.
interpreted = pytest.mark.skipif(
    os.environ.get('TRITON_INTERPRET') != '1',
    reason='needs TRITON_INTERPRET=1 from the start (a GPU machine runs '
    'the compiled kernels in tests/test_gpu.py)')

# (pairs, temperature, eps, dtype): every pair mode, T = 1 and T != 1,
# exact and smoothed KL, float32 logits and half-precision ones (AMP).
SETTINGS = list(itertools.product(
    PAIR_MODES, (1.0, 2.0), (0.0, 1e-8),
    (torch.float32, torch.float16, torch.bfloat16)))


def fused_and_eager(logits: torch.Tensor, amp: bool = False, **kwargs):
    """Value and gradient of the fused and of the eager loss on ``logits``
    (under autocast to the logits' dtype with ``amp``)."""
    results = []
    for fused in (True, False):
        x = logits.clone().requires_grad_()
        loss = SynergyLoss(fused=fused, **kwargs)
        with torch.autocast(logits.device.type, dtype=logits.dtype,
                            enabled=amp):
            value = loss(x)
        results.append((value, torch.autograd.grad(value, x)[0]))
    return results


def assert_fused_matches_eager(shape, device: str, pairs: str,
                               temperature: float, eps: float,
                               dtype: torch.dtype) -> None:
    """Same value (1e-6 relative) and gradient: 1e-6 relative in float32;
    from half-precision logits, under autocast, both gradients are rounded
    once to the logits' dtype and may differ by that rounding, or by 1e-6
    of the largest gradient (the eager form leaves a smoothed pure teacher
    a residue of that size where the kernel gives exactly 0)."""
    torch.manual_seed(0)
    logits = (3 * torch.randn(shape, device=device)).to(dtype)
    amp = dtype != torch.float32
    (fused, fused_grad), (eager, eager_grad) = fused_and_eager(
        logits, amp, pairs=pairs, temperature=temperature, eps=eps,
        alpha=0.7)
    assert fused.dtype == eager.dtype == torch.float32
    assert fused_grad.dtype == eager_grad.dtype == dtype
    assert eager.item() > 0
    assert abs(fused.item() - eager.item()) <= 1e-6 * eager.item()
    if dtype == torch.float32:
        error = (fused_grad - eager_grad).double().norm()
        assert error <= 1e-6 * eager_grad.double().norm()
    else:
        info = torch.finfo(dtype)
        torch.testing.assert_close(
            fused_grad.float(), eager_grad.float(), rtol=info.eps,
            atol=1e-6 * eager_grad.abs().max().item())


@interpreted
@pytest.mark.parametrize('setting', SETTINGS)
def test_interpreted_kernels_match_eager(setting):
    assert_fused_matches_eager((3, 4, 10), 'cpu', *setting)


@interpreted
@pytest.mark.parametrize('shape,pairs,eps', [
    ((3, 2, 2500), 'dense', 0.0),      # three chunks of classes
    ((3, 2, 2500), 'top_down', 1e-8),
    ((5, 3, 7), 'bottom_up', 0.0),     # K padded to 8
    ((2, 1, 3), 'dense', 1e-8),
])
def test_interpreted_kernels_match_eager_on_other_shapes(shape, pairs, eps):
    assert_fused_matches_eager(shape, 'cpu', pairs, 1.5, eps, torch.float32)


@interpreted
@pytest.mark.parametrize('eps', [0.0, 1e-8])
@pytest.mark.parametrize('pairs,pure_teacher', [('top_down', -1),
                                                ('bottom_up', 0)])
def test_fused_gives_a_pure_teacher_exactly_zero(pairs, pure_teacher, eps):
    logits = torch.randn(3, 5, 4, requires_grad=True)
    SynergyLoss(pairs=pairs, eps=eps, fused=True)(logits).backward()
    assert torch.count_nonzero(logits.grad[pure_teacher]) == 0
    assert torch.count_nonzero(logits.grad) > 0


def test_fused_none_runs_the_eager_form_off_cuda(monkeypatch):
    def unreachable():
        raise AssertionError('reached for the kernels')

    monkeypatch.setattr(synergy_loss, 'fused_pairwise_kl', unreachable)
    logits = torch.randn(3, 4, 10, requires_grad=True)
    SynergyLoss()(logits).backward()
    assert logits.grad is not None


def test_fused_true_names_what_is_missing(monkeypatch):
    logits = torch.randn(3, 4, 10)
    with pytest.raises(ValueError, match='float64'):
        SynergyLoss(fused=True)(logits.double())
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    with pytest.raises(ValueError, match='TRITON_INTERPRET=1'):
        SynergyLoss(fused=True)(logits)
    monkeypatch.setattr(synergy_loss, 'fused_pairwise_kl', lambda: None)
    with pytest.raises(RuntimeError, match='needs Triton'):
        SynergyLoss(fused=True)(logits)
    assert SynergyLoss()(logits).item() > 0  # None falls back
    with pytest.raises(ValueError, match='fused'):
        SynergyLoss(fused='yes')


def test_kernels_compile_for_an_h100_without_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tests',
                                  'compile_fused_kernels.py')],
        env=dict(env, PYTHONPATH=REPO_ROOT, TRITON_CACHE_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'compiled for sm_90' in result.stdout
