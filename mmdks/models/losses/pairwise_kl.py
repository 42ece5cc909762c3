"""The synergy loss's eager closed form: every pair's KL at once, with its
gradient written out (the CPU path and the reference of the fused one)."""
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

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


def _mix(weights: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``sum_n weights[k, n] * p[n]``: (K, K) x (K, N, C) -> (K, N, C).

    Elementwise products and a K-term sum, not a matrix product: a TF32 or
    reduced-precision matmul would round p before the terms cancel.
    """
    return (weights[:, :, None, None] * p).sum(1)


class PairwiseKL(torch.autograd.Function):
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
