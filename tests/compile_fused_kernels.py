"""Compile the fused synergy loss's kernels for an H100 (sm_90) ahead of
time, with no GPU: Triton's compiler and ptxas catch what its interpreter
cannot (types of loop-carried values, lowering). Run by
tests/test_fused_synergy.py in a process of its own, as Triton must not be
in interpreter mode here.

Usage: python tests/compile_fused_kernels.py
"""
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from mmdks.models.losses import fused_synergy

H100 = GPUTarget('cuda', 90, 32)


def forward(dtype: str, smooth: bool, grad_weights: bool) -> None:
    pointers = dict(logits_ptr=f'*{dtype}', weights_ptr='*fp32',
                    grad_weights_ptr='*fp32', row_loss_ptr='*fp32',
                    grad_ptr='*fp32')
    scalars = dict(batch_size='i32', num_classes='i32',
                   inv_temperature='fp32', eps='fp32')
    constants = dict(NUM_CLASSIFIERS=4, BLOCK_K=4, BLOCK_C=1024,
                     SMOOTH=smooth, GRAD_WEIGHTS=grad_weights)
    signature = dict(pointers, **scalars, **dict.fromkeys(constants,
                                                          'constexpr'))
    triton.compile(
        ASTSource(fused_synergy._forward_kernel, signature, constants),
        target=H100, options=dict(num_warps=8))


def scale(dtype: str) -> None:
    signature = dict(grad_dir_ptr='*fp32', grad_output_ptr='*fp32',
                     out_ptr=f'*{dtype}', numel='i32',
                     inv_temperature='fp32', BLOCK='constexpr')
    triton.compile(
        ASTSource(fused_synergy._scale_kernel, signature, dict(BLOCK=1024)),
        target=H100)


if __name__ == '__main__':
    # Both code paths of the forward; the backward's cast to half.
    forward('fp16', smooth=True, grad_weights=True)
    forward('fp32', smooth=False, grad_weights=False)
    scale('bf16')
    print('compiled for sm_90')
