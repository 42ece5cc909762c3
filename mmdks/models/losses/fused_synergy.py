"""The synergy loss in two Triton kernels: one for the forward (the loss
and its gradient direction), one for the backward (a scale).

Imported only where Triton is: :class:`SynergyLoss` falls back to its
eager closed form without it. With ``TRITON_INTERPRET=1`` set before
Triton is imported, the kernels run in Triton's interpreter, on CPU
tensors (how the tests check them on a machine without a GPU).
"""
import contextlib
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

# Largest (classifiers x classes) tile a program holds in registers; more
# classes are swept in chunks.
MAX_TILE = 4096
SCALE_BLOCK = 1024


@triton.jit
def _forward_kernel(logits_ptr, weights_ptr, grad_weights_ptr, row_loss_ptr,
                    grad_ptr, batch_size, num_classes, inv_temperature, eps,
                    NUM_CLASSIFIERS: tl.constexpr, BLOCK_K: tl.constexpr,
                    BLOCK_C: tl.constexpr, SMOOTH: tl.constexpr,
                    GRAD_WEIGHTS: tl.constexpr):
    """One program per sample: its loss term and gradient direction.

    Sweeps over the classes: 0 finds each classifier's log-sum-exp; 1 adds
    up ``sum_k log q_k (L q)_k`` and, for the exact KL, stores the gradient
    direction ``G p``; with smoothing, 1 sums the gradient's ratios and 2
    stores ``ratio - p sum(ratio)``. ``L`` (``weights``) and ``G``
    (``grad_weights``, the student side only, which gives a pure teacher
    exactly zero) are (K, K), row-major, scale folded in.
    """
    row = tl.program_id(0).to(tl.int64)
    k = tl.arange(0, BLOCK_K)
    k_ok = k < NUM_CLASSIFIERS
    # Row `row` of every classifier in a contiguous (K, N, C) tensor.
    row_offsets = (k[:, None] * batch_size + row) * num_classes
    row_max = tl.full([BLOCK_K], float('-inf'), tl.float32)
    row_sum = tl.zeros([BLOCK_K], tl.float32)
    loss = tl.zeros([BLOCK_K], tl.float32)
    ratio_sum = tl.zeros([BLOCK_K], tl.float32)
    for sweep in tl.static_range(3 if SMOOTH else 2):
        for start in range(0, num_classes, BLOCK_C):
            cols = start + tl.arange(0, BLOCK_C)
            c_ok = cols < num_classes
            ok = k_ok[:, None] & c_ok[None, :]
            offsets = row_offsets + cols[None, :]
            # Padding classifiers read zeros: finite, and weighted by 0.
            z = tl.load(logits_ptr + offsets, mask=ok, other=0.0)
            z = tl.where(c_ok[None, :], z.to(tl.float32) * inv_temperature,
                         float('-inf'))
            if sweep == 0:
                new_max = tl.maximum(row_max, tl.max(z, 1))
                row_sum = row_sum * tl.exp(row_max - new_max) + tl.sum(
                    tl.exp(z - new_max[:, None]), 1)
                row_max = new_max
            else:
                log_p = z - row_max[:, None] - tl.log(row_sum)[:, None]
                p = tl.exp(log_p)
                if SMOOTH:
                    # (1 + C eps) q: the factor is in the weights' scale.
                    q = p + eps
                    log_q = tl.log(q)
                else:
                    q = p
                    log_q = log_p
                # Padding would multiply 0 by log 0.
                log_q = tl.where(ok, log_q, 0.0)
                mix = tl.zeros([BLOCK_K, BLOCK_C], tl.float32)
                grad_mix = tl.zeros([BLOCK_K, BLOCK_C], tl.float32)
                for n in tl.static_range(NUM_CLASSIFIERS):
                    q_n = tl.sum(tl.where(k[:, None] == n, q, 0.0), 0)
                    w_n = tl.load(weights_ptr + k * NUM_CLASSIFIERS + n,
                                  mask=k_ok, other=0.0)
                    mix += w_n[:, None] * q_n[None, :]
                    if GRAD_WEIGHTS:
                        g_n = tl.load(
                            grad_weights_ptr + k * NUM_CLASSIFIERS + n,
                            mask=k_ok, other=0.0)
                        grad_mix += g_n[:, None] * q_n[None, :]
                if not GRAD_WEIGHTS:
                    grad_mix = mix
                if sweep == 1:
                    loss += tl.sum(mix * log_q, 1)
                if SMOOTH:
                    # d log q_c / dz_j = p_c (delta_cj - p_j) / q_c.
                    ratio = tl.where(ok, grad_mix * p / q, 0.0)
                    if sweep == 1:
                        ratio_sum += tl.sum(ratio, 1)
                    else:
                        tl.store(grad_ptr + offsets,
                                 ratio - p * ratio_sum[:, None], mask=ok)
                else:
                    tl.store(grad_ptr + offsets, grad_mix, mask=ok)
    tl.store(row_loss_ptr + row, tl.sum(loss, 0))


@triton.jit
def _scale_kernel(grad_dir_ptr, grad_output_ptr, out_ptr, numel,
                  inv_temperature, BLOCK: tl.constexpr):
    """``out = grad_dir * (grad_output / T)``, in ``out``'s dtype."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = i < numel
    scale = tl.load(grad_output_ptr).to(tl.float32) * inv_temperature
    grad = tl.load(grad_dir_ptr + i, mask=ok) * scale
    tl.store(out_ptr + i, grad.to(out_ptr.dtype.element_ty), mask=ok)


def _launching_on(device: torch.device):
    """Triton launches on the current CUDA device: make it the tensors'."""
    if device.type == 'cuda':
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def fused_forward(logits: torch.Tensor, weights: torch.Tensor,
                  grad_weights: Optional[torch.Tensor], temperature: float,
                  eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """The summed, scaled pair KL and its gradient direction.

    Args:
        logits (Tensor): (K, N, C), float32, float16 or bfloat16; computed
            in float32.
        weights (Tensor): (K, K) float32, ``scale * L`` (see
            :class:`~mmdks.models.losses.pairwise_kl.Pairs`).
        grad_weights (Tensor, optional): (K, K) float32, ``scale * G``;
            None where it equals ``weights`` (dense pairs).
        temperature (float): Softmax temperature T.
        eps (float): The reference code's smoothing, 0 for the exact KL.

    Returns:
        tuple[Tensor, Tensor]: The loss, a float32 scalar, and the
        gradient with respect to ``logits / T`` per unit of loss, (K, N, C)
        float32.
    """
    logits = logits.contiguous()
    num_classifiers, batch_size, num_classes = logits.shape
    block_k = triton.next_power_of_2(num_classifiers)
    block_c = min(triton.next_power_of_2(num_classes),
                  max(16, MAX_TILE // block_k))
    row_loss = logits.new_empty(batch_size, dtype=torch.float32)
    grad_dir = torch.empty_like(logits, dtype=torch.float32)
    with _launching_on(logits.device):
        _forward_kernel[(batch_size, )](
            logits, weights,
            weights if grad_weights is None else grad_weights, row_loss,
            grad_dir, batch_size, num_classes, 1 / temperature, eps,
            NUM_CLASSIFIERS=num_classifiers, BLOCK_K=block_k,
            BLOCK_C=block_c, SMOOTH=bool(eps),
            GRAD_WEIGHTS=grad_weights is not None,
            num_warps=8 if block_k * block_c >= 2048 else 4)
    # Summed here, not by atomics: the same logits give the same loss.
    return row_loss.sum(), grad_dir


def fused_backward(grad_dir: torch.Tensor, grad_output: torch.Tensor,
                   temperature: float, dtype: torch.dtype) -> torch.Tensor:
    """``grad_dir * grad_output / T`` in ``dtype``, in one kernel."""
    out = torch.empty_like(grad_dir, dtype=dtype)
    numel = grad_dir.numel()
    with _launching_on(grad_dir.device):
        _scale_kernel[(triton.cdiv(numel, SCALE_BLOCK), )](
            grad_dir, grad_output, out, numel, 1 / temperature,
            BLOCK=SCALE_BLOCK)
    return out


class FusedPairwiseKL(torch.autograd.Function):
    """:class:`~mmdks.models.losses.pairwise_kl.PairwiseKL` in Triton
    kernels: the same arguments, value and gradient, computed in float32
    from float32, float16 or bfloat16 logits, the gradient returned in the
    logits' dtype. Differentiable once."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, pairs, temperature: float,
                eps: float) -> torch.Tensor:
        loss, grad_dir = fused_forward(logits, pairs.weights,
                                       pairs.grad_weights, temperature, eps)
        ctx.save_for_backward(grad_dir)
        ctx.temperature = temperature
        ctx.dtype = logits.dtype
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        grad_dir, = ctx.saved_tensors
        return fused_backward(grad_dir, grad_output, ctx.temperature,
                              ctx.dtype), None, None, None
