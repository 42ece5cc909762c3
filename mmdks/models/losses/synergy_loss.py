from typing import Dict, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from mmpretrain.registry import MODELS

PAIR_MODES = ('dense', 'top_down', 'bottom_up')


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
    """A pair set as the loss uses it every step.

    With ``A = mask`` (student m, teacher n), the KL sum is
    ``sum_{k,b,c} log p_k * (L @ p)_k`` for ``L = diag(A.sum(0)) - A`` (each
    teacher's negative entropy counted once per student, minus the cross
    terms), and its gradient with respect to ``z_m / T`` is
    ``(L @ p)_m + shift_m * p_m`` with ``shift = A.sum(1) - A.sum(0)``: the
    students' and the teachers' pair counts differ only for one-way sets.
    """
    weights: torch.Tensor  # (K, K): L
    grad_shift: Optional[torch.Tensor]  # (K, 1, 1); None where all zero
    count: int  # number of pairs


def _mix(weights: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``sum_n weights[k, n] * p[n]``: (K, K) x (K, N, C) -> (K, N, C).

    Elementwise products and a K-term sum, not a matrix product: a TF32 or
    reduced-precision matmul would round p before the terms cancel.
    """
    return (weights[:, :, None, None] * p).sum(1)


class _PairwiseKL(torch.autograd.Function):
    """Sum of ``mask[m, n] * KL(sg[p_n] || p_m)`` over pairs and samples,
    times ``scale``, with its gradient written out.

    The loss is a handful of tiny kernels whose cost on a GPU is their
    launches; autograd would add as many again to go back through them. In
    the form of :class:`Pairs` the forward is seven kernels and the backward
    two. Each term of the KL sum is already a difference of probabilities,
    so nearly equal classifiers do not lose the loss to cancellation. It is
    differentiable once (no double backward).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, pairs: 'Pairs',
                temperature: float, scale: float) -> torch.Tensor:
        """``logits``: (K, N, C); ``pairs`` in the logits' dtype."""
        # Under AMP the products would run in half precision; the weighted
        # sums of probabilities below cancel and need the logits' own
        # precision.
        with torch.autocast(logits.device.type, enabled=False):
            if temperature != 1:
                logits = logits / temperature
            log_p = F.log_softmax(logits, dim=-1)
            p = log_p.exp()
            weights = _mix(pairs.weights, p)
            kl_sum = (weights * log_p).sum()
            grad_dir = weights if pairs.grad_shift is None else \
                torch.addcmul(weights, pairs.grad_shift, p)
        ctx.save_for_backward(grad_dir)
        ctx.grad_scale = scale / temperature
        return kl_sum * scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        grad_dir, = ctx.saved_tensors
        return grad_dir * (grad_output * ctx.grad_scale), None, None, None


@MODELS.register_module()
class SynergyLoss(nn.Module):
    """Knowledge-synergy loss of DKS (Sun et al., CVPR 2019).

    .. math::
        L = \\alpha T^2 \\sum_{(m, n) \\in B}
            KL(\\mathrm{sg}[p_n^T] \\| p_m^T),
        \\quad p_k^T = \\mathrm{softmax}(z_k / T)

    Every KL term is a batch mean and the terms are summed, as in the
    reference code. The teacher side is detached, so the gradient of each
    term equals a soft-target cross-entropy. All pairs are computed at once
    from one ``log_softmax`` of the stacked logits, which keeps the loss
    finite in fp16/bf16.

    With K classifiers the dense sum has K(K-1) terms, so its gradient on the
    shared backbone grows with K, and early on the students match untrained
    branches. Two options temper that while keeping the reference available
    (their defaults): ``reduction='mean'`` averages over the pairs, and
    ``warmup_iters`` ramps alpha linearly from 0 over the first training
    iterations (counted by the loss in training mode, saved with the model).

    Args:
        alpha (float): Weight of the synergy term. ``0`` turns DKS into plain
            deep supervision and skips the computation. Defaults to 1.0.
        temperature (float): Softmax temperature T. Defaults to 1.0.
        pairs (str): Pair set B, one of ``'dense'``, ``'top_down'``,
            ``'bottom_up'``. Defaults to ``'dense'``.
        reduction (str): ``'sum'`` over pairs (the reference) or ``'mean'``.
            Defaults to ``'sum'``.
        warmup_iters (int): Training iterations over which alpha ramps up
            linearly from 0. Defaults to 0 (no ramp).
    """

    def __init__(self,
                 alpha: float = 1.0,
                 temperature: float = 1.0,
                 pairs: str = 'dense',
                 reduction: str = 'sum',
                 warmup_iters: int = 0) -> None:
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
        if not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(
                f'SynergyLoss: alpha={alpha} must be >= 0 (0 = plain deep '
                'supervision)')
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(
                f'SynergyLoss: temperature={temperature} must be > 0')
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.pairs = pairs
        self.reduction = reduction
        self.warmup_iters = warmup_iters
        self._pair_sets: Dict[tuple, Pairs] = {}
        self.register_buffer('trained_iters',
                             torch.zeros((), dtype=torch.long))

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
        num_classifiers, batch_size = logits.shape[:2]
        alpha = self.alpha
        if self.warmup_iters:
            alpha *= min(1.0, self.trained_iters.item() / self.warmup_iters)
            if self.training:
                self.trained_iters += 1
        if alpha == 0 or num_classifiers < 2:
            return logits.new_zeros(())
        # Compute in float32 at least: half-precision probabilities of
        # saturated predictions underflow and their sums lose the KL.
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        pairs = self._pairs(num_classifiers, logits)
        scale = alpha * self.temperature**2 / batch_size
        if self.reduction == 'mean':
            scale /= pairs.count
        return _PairwiseKL.apply(logits, pairs, self.temperature, scale)

    def _pairs(self, num_classifiers: int, like: torch.Tensor) -> Pairs:
        """The pair set in ``like``'s dtype and device, made once per K,
        device and dtype (no per-step kernels)."""
        key = (num_classifiers, like.device, like.dtype)
        if key not in self._pair_sets:
            mask = pair_mask(num_classifiers, self.pairs,
                             like.device).to(like.dtype)
            shift = mask.sum(1) - mask.sum(0)
            self._pair_sets[key] = Pairs(
                torch.diag(mask.sum(0)) - mask,
                shift[:, None, None] if shift.any() else None,
                int(mask.sum().item()))
        return self._pair_sets[key]
