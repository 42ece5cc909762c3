import functools
import math
import os
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from .pairwise_kl import PAIR_MODES, Pairs, PairwiseKL, pair_mask

# The reference code's smoothing constant (wrn_DKS/KL_divergence.py).
REFERENCE_EPS = 1e-8
# Above this the smoothing is no longer a guard against log(0) but a
# change of the target: at 1e-4 and 1000 classes it already moves 9% of
# every distribution's mass to uniform.
MAX_EPS = 1e-4
# Logits the Triton kernels read (they compute in float32).
FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@MODELS.register_module()
class SynergyLoss(nn.Module):
    """Knowledge-synergy loss of DKS (Sun et al., CVPR 2019).

    .. math::
        L = \\alpha T^2 \\sum_{(m, n) \\in B}
            KL(\\mathrm{sg}[q_n] \\| q_m),
        \\quad q_k = \\mathrm{softmax}(z_k / T)

    Every KL term is a batch mean and the terms are summed, as in the
    reference code. The teacher side is detached, so the gradient of each
    term equals a soft-target cross-entropy. All pairs are computed at once
    from one softmax of the stacked logits, which keeps the loss finite in
    fp16/bf16.

    ``eps`` reproduces the reference code, which smooths both sides before
    the log: ``q = (p + eps) / (1 + C eps)`` with ``eps = 1e-8``
    (:data:`REFERENCE_EPS`). That caps every log-ratio once a probability
    falls below eps: on saturated predictions (logits ~ N(0, 10^2), 10
    classes) the smoothed value is 26% below the exact KL, and the
    gradients differ too; at ordinary confidence the two agree to 1e-6.
    The paper's numbers were produced with the smoothed form, so the
    paper-reproduction configs set ``eps=1e-8``; the default ``eps=0`` is
    the exact KL the paper writes down.

    With K classifiers the dense sum has K(K-1) terms, so its gradient on the
    shared backbone grows with K, and early on the students match untrained
    branches. Two options temper that while keeping the reference available
    (their defaults): ``reduction='mean'`` averages over the pairs, and
    ``warmup_iters`` ramps alpha linearly from 0 over the first optimizer
    steps. The ramp is driven by :class:`SynergyWarmupHook` (add
    ``custom_hooks=[dict(type='SynergyWarmupHook')]``), which sets it from
    the runner's iteration without reading anything back from the device.

    Args:
        alpha (float): Weight of the synergy term. ``0`` turns DKS into plain
            deep supervision and skips the computation. Defaults to 1.0.
        temperature (float): Softmax temperature T. Defaults to 1.0.
        pairs (str): Pair set B, one of ``'dense'``, ``'top_down'``,
            ``'bottom_up'``. Defaults to ``'dense'``.
        reduction (str): ``'sum'`` over pairs (the reference) or ``'mean'``.
            Defaults to ``'sum'``.
        eps (float): The reference code's smoothing of both distributions,
            in ``[0, 1e-4]``; ``1e-8`` reproduces it, ``0`` is the exact KL.
            Defaults to 0.
        warmup_iters (int): Optimizer steps over which alpha ramps up
            linearly from 0 (needs :class:`SynergyWarmupHook`). Defaults to
            0 (no ramp).
        fused (bool, optional): Run the loss as two Triton kernels
            (forward, backward) and a sum instead of the eager closed
            form's 6 operators (11 smoothed): same value and gradient
            (1e-6 relative in float32), a fraction of the host's work.
            ``None`` fuses CUDA logits where Triton imports, except under
            ``torch.compile`` (which fuses the eager form itself);
            ``True`` insists (and runs Triton's interpreter on CPU logits
            under ``TRITON_INTERPRET=1``); ``False`` never fuses.
            Defaults to False: the kernels are tested in Triton's
            interpreter and compiled for an H100, but have not yet run on
            a GPU (``tests/test_gpu.py``,
            ``tools/analysis_tools/gpu_benchmarks.sh``).
    """

    def __init__(self,
                 alpha: float = 1.0,
                 temperature: float = 1.0,
                 pairs: str = 'dense',
                 reduction: str = 'sum',
                 eps: float = 0.0,
                 warmup_iters: int = 0,
                 fused: Optional[bool] = False) -> None:
        super().__init__()
        if reduction not in ('sum', 'mean'):
            raise ValueError(f'SynergyLoss: reduction={reduction!r} must be '
                             "'sum' (the reference) or 'mean'")
        if not isinstance(warmup_iters, int) or warmup_iters < 0:
            raise ValueError(f'SynergyLoss: warmup_iters={warmup_iters!r} '
                             'must be an int >= 0')
        if pairs not in PAIR_MODES:
            raise ValueError(f'SynergyLoss: pairs={pairs!r} is unknown; '
                             f'use one of {PAIR_MODES}')
        if not _is_real(alpha) or not 0 <= alpha < math.inf:
            raise ValueError(
                f'SynergyLoss: alpha={alpha!r} must be a finite number >= 0 '
                '(0 = plain deep supervision)')
        if not _is_real(temperature) or not 0 < temperature < math.inf:
            raise ValueError(f'SynergyLoss: temperature={temperature!r} '
                             'must be a finite number > 0')
        if not (fused is None or isinstance(fused, bool)):
            raise ValueError(f'SynergyLoss: fused={fused!r} must be None '
                             '(the Triton kernels on CUDA where Triton is), '
                             'True or False')
        if not _is_real(eps) or not 0 <= eps <= MAX_EPS:
            raise ValueError(
                f'SynergyLoss: eps={eps!r} must be a number in [0, '
                f'{MAX_EPS}]: {REFERENCE_EPS} reproduces the reference '
                'code, 0 is the exact KL; larger values swamp the '
                'distributions with uniform mass')
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.pairs = pairs
        self.reduction = reduction
        self.eps = float(eps)
        self.warmup_iters = warmup_iters
        self.fused = fused
        self._pair_sets: Dict[tuple, Pairs] = {}
        # Set by SynergyWarmupHook; a tensor, so that neither the hook nor
        # a compiled graph needs the value on the host.
        self.register_buffer(
            'warmup_factor', torch.ones(()), persistent=False)
        self.warmup_driven = False

    def set_warmup_factor(self, factor: float) -> None:
        """Scale alpha by ``factor`` from now on (the warm-up hook's
        setter)."""
        self.warmup_factor.fill_(factor)
        self.warmup_driven = True

    def forward(self, logits: Union[torch.Tensor,
                                    Sequence[torch.Tensor]]) -> torch.Tensor:
        """Compute the synergy term.

        Args:
            logits (Tensor | Sequence[Tensor]): The K classifiers' logits,
                shallowest first, stacked to shape (K, N, C) or given as K
                tensors of shape (N, C).

        Returns:
            Tensor: A scalar; zero when ``alpha == 0`` or K == 1.
        """
        if not isinstance(logits, torch.Tensor):
            logits = torch.stack(list(logits))
        num_classifiers = logits.size(0)
        if self.alpha == 0 or num_classifiers < 2:
            return logits.new_zeros(())
        if self.warmup_iters and self.training and not self.warmup_driven:
            raise RuntimeError(
                f'SynergyLoss: warmup_iters={self.warmup_iters} needs the '
                "warm-up hook: add custom_hooks=[dict(type='"
                "SynergyWarmupHook')] to the config")
        # Compute in float32 at least: half-precision probabilities of
        # saturated predictions underflow and their sums lose the KL.
        dtype = torch.promote_types(logits.dtype, torch.float32)
        pairs = self._pairs(logits, dtype)
        if self._use_fused(logits):
            # The kernels read half-precision logits as they are.
            loss = fused_pairwise_kl().apply(logits, pairs, self.temperature,
                                             self.eps)
        else:
            loss = PairwiseKL.apply(
                logits.to(dtype), pairs, self.temperature, self.eps)
        if self.warmup_iters:
            loss = loss * self.warmup_factor
        return loss

    def _pairs(self, logits: torch.Tensor, dtype: torch.dtype) -> Pairs:
        """The pair set with the loss's scale, in ``dtype`` on the logits'
        device, made once per shape, device and dtype (no per-step
        kernels)."""
        num_classifiers, batch_size, num_classes = logits.shape
        key = (num_classifiers, batch_size, num_classes, logits.device,
               dtype)
        if key not in self._pair_sets:
            mask = pair_mask(num_classifiers, self.pairs, logits.device)
            scale = self.alpha * self.temperature**2 / batch_size / (
                1 + num_classes * self.eps)
            if self.reduction == 'mean':
                scale /= int(mask.sum().item())
            mask = mask.double() * scale
            shift = mask.sum(1) - mask.sum(0)
            one_way = bool(shift.any())
            self._pair_sets[key] = Pairs(
                (torch.diag(mask.sum(0)) - mask).to(dtype),
                shift[:, None, None].to(dtype)
                if one_way and not self.eps else None,
                (torch.diag(mask.sum(1)) - mask).to(dtype)
                if one_way else None)
        return self._pair_sets[key]

    def _use_fused(self, logits: torch.Tensor) -> bool:
        """Whether this call runs the Triton kernels (see ``fused``)."""
        if self.fused is False:
            return False
        if self.fused is None:
            # Under torch.compile the eager form is traced and fused by
            # the compiler instead.
            return (logits.is_cuda and logits.dtype in FUSED_DTYPES
                    and not torch.compiler.is_compiling()
                    and fused_pairwise_kl() is not None)
        if fused_pairwise_kl() is None:
            raise RuntimeError('SynergyLoss: fused=True needs Triton '
                               '(pip install triton), or set fused=None')
        if logits.dtype not in FUSED_DTYPES:
            raise ValueError(
                f'SynergyLoss: fused=True takes logits of {FUSED_DTYPES}, '
                f'got {logits.dtype}; set fused=None to fall back')
        if not logits.is_cuda and os.environ.get('TRITON_INTERPRET') != '1':
            raise ValueError(
                'SynergyLoss: fused=True runs on CUDA tensors, or on the '
                'CPU under Triton\'s interpreter (TRITON_INTERPRET=1)')
        return True


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@functools.lru_cache(maxsize=None)
def fused_pairwise_kl() -> Optional[type]:
    """The Triton form of :class:`PairwiseKL`, or None without Triton
    (imported on first use: a CPU run never needs it)."""
    try:
        from .fused_synergy import FusedPairwiseKL
    except ImportError:
        return None
    return FusedPairwiseKL
