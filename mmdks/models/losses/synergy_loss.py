import functools
import math
import os
from typing import Dict, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from mmpretrain.registry import MODELS

PAIR_MODES = ('dense', 'top_down', 'bottom_up')
# The reference code's smoothing constant (wrn_DKS/KL_divergence.py).
REFERENCE_EPS = 1e-8
# Above this the smoothing is no longer a guard against log(0) but a
# change of the target: at 1e-4 and 1000 classes it already moves 9% of
# every distribution's mass to uniform.
MAX_EPS = 1e-4
# Logits the Triton kernels read (they compute in float32).
FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def pair_mask(num_classifiers: int, pairs: str,
              device: Union[torch.device, str, None] = None) -> torch.Tensor:
    """Which (student m, teacher n) pairs the synergy term matches.

    Classifiers are ordered shallowest first, the main (deepest) one last.

    Args:
        num_classifiers (int): K, the number of classifiers.
        pairs (str): ``'dense'`` (every ordered pair, the paper),
            ``'top_down'`` (deeper teaches shallower, n > m) or
            ``'bottom_up'`` (shallower teaches deeper, n < m).
        device: Device of the returned mask.

    Returns:
        Tensor: Float mask of shape (K, K), ``mask[m, n] = 1`` where
        classifier n is a teacher of classifier m.
    """
    idx = torch.arange(num_classifiers, device=device)
    student, teacher = idx[:, None], idx[None, :]
    if pairs == 'dense':
        mask = student != teacher
    elif pairs == 'top_down':
        mask = teacher > student
    elif pairs == 'bottom_up':
        mask = teacher < student
    else:
        raise ValueError(f'pairs={pairs!r} is not one of {PAIR_MODES}')
    return mask.float()


class Pairs(NamedTuple):
    """A pair set as the loss uses it every step, its scale folded in.

    With ``A = mask`` (student m, teacher n) and ``q`` the (smoothed)
    distributions, the KL sum is ``sum_{k,b,c} log q_k * (L @ q)_k`` for
    ``L = diag(A.sum(0)) - A``: each teacher's negative entropy counted once
    per student, minus the cross terms. Without smoothing, its gradient
    with respect to ``z_m / T`` is ``(L @ p)_m + shift_m * p_m`` with
    ``shift = A.sum(1) - A.sum(0)``: the students' and the teachers' pair
    counts differ only for one-way sets. For those the fused kernel takes
    that gradient as ``G @ p`` with ``G = diag(A.sum(1)) - A`` instead, and
    weights the smoothed form's ratios by ``G @ q`` (one more K-term mix,
    free inside a kernel): a pure teacher's row of ``G`` is zero, so its
    gradient is exactly zero.
    """
    weights: torch.Tensor  # (K, K): scale * L
    grad_shift: Optional[torch.Tensor]  # (K, 1, 1); None where all zero
    grad_weights: Optional[torch.Tensor]  # (K, K): scale * G; None if L
    count: int  # number of pairs


def _mix(weights: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``sum_n weights[k, n] * p[n]``: (K, K) x (K, N, C) -> (K, N, C).

    Elementwise products and a K-term sum, not a matrix product: a TF32 or
    reduced-precision matmul would round p before the terms cancel.
    """
    return (weights[:, :, None, None] * p).sum(1)


class _PairwiseKL(torch.autograd.Function):
    """Sum of ``mask[m, n] * KL(sg[q_n] || q_m)`` over pairs and samples,
    times the scale folded into ``pairs``, with its gradient written out.

    ``q = softmax(z / T)``, or with ``eps > 0`` the reference code's
    smoothing ``q = (p + eps) / (1 + C * eps)``. The loss is a handful of
    tiny kernels whose cost on a GPU is their launches; autograd would add
    as many again to go back through them. Forward and backward together
    run 6 kernels (exact KL, dense pairs) or 11 (smoothed). It is
    differentiable once (no double backward).

    The value sums terms of the size of the classifiers' disagreement that
    cancel to a KL of its square, so nearly agreeing classifiers log a value
    with fewer correct digits: in float32, 6e-4 relative error where logits
    of scale 5 agree to 1e-3, 8e-3 where they agree to 1e-4 (a per-pair
    ``F.kl_div`` loop: 3e-3 and 2e-1; docs/objective.md). With ``eps=0`` a
    logit of -inf gives NaN, as in the loop; the smoothed form stays
    finite.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, pairs: Pairs, temperature: float,
                eps: float) -> torch.Tensor:
        """``logits``: (K, N, C); ``pairs`` in the logits' dtype."""
        # Under AMP the products would run in half precision; the weighted
        # sums of probabilities below cancel and need the logits' own
        # precision.
        with torch.autocast(logits.device.type, enabled=False):
            if temperature != 1:
                logits = logits / temperature
            if eps:
                p = F.softmax(logits, dim=-1)
                smoothed = p + eps  # (1 + C * eps) q: the factor is in L
                log_q = smoothed.log()  # log q + const; L's sum is zero
            else:
                log_q = F.log_softmax(logits, dim=-1)
                p = smoothed = log_q.exp()
            weights = _mix(pairs.weights, smoothed)
            kl_sum = torch.dot(weights.view(-1), log_q.view(-1))
            if eps:
                # d log q_c / dz_j = p_c (delta_cj - p_j) / (p_c + eps).
                ratio = weights * p / smoothed
                grad_dir = torch.addcmul(
                    ratio, p, ratio.sum(-1, keepdim=True), value=-1)
            elif pairs.grad_shift is not None:
                # Not addcmul: a fused multiply-add would leave a pure
                # teacher the rounding residue of L p - shift p, not 0.
                grad_dir = weights + pairs.grad_shift * p
            else:
                grad_dir = weights
        ctx.save_for_backward(grad_dir)
        ctx.inv_temperature = 1 / temperature
        return kl_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        grad_dir, = ctx.saved_tensors
        if ctx.inv_temperature != 1:
            grad_output = grad_output * ctx.inv_temperature
        return grad_dir * grad_output, None, None, None


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
        if fused not in (None, True, False):
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
            loss = _PairwiseKL.apply(
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
            count = int(mask.sum().item())
            scale = self.alpha * self.temperature**2 / batch_size / (
                1 + num_classes * self.eps)
            if self.reduction == 'mean':
                scale /= count
            mask = mask.double() * scale
            shift = mask.sum(1) - mask.sum(0)
            one_way = bool(shift.any())
            self._pair_sets[key] = Pairs(
                (torch.diag(mask.sum(0)) - mask).to(dtype),
                shift[:, None, None].to(dtype)
                if one_way and not self.eps else None,
                (torch.diag(mask.sum(1)) - mask).to(dtype)
                if one_way else None, count)
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
    """The Triton form of :class:`_PairwiseKL`, or None without Triton
    (imported on first use: a CPU run never needs it)."""
    try:
        from .fused_synergy import FusedPairwiseKL
    except ImportError:
        return None
    return FusedPairwiseKL
