"""Measure what DKS costs: training steps, memory, FLOPs, deployed
latency, and the synergy loss against the per-pair reference.

Each function builds one measurable thing (a model, a step, a memory
figure); :mod:`mmdks.analysis.benchmark_report` times them together and
judges the targets."""
import copy
import math
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.utils._python_dispatch import TorchDispatchMode

from mmdks.analysis.reference_loss import reference_synergy
from mmdks.apis import load_exactly, plain_model_config, strip_state_dict
from mmdks.models.losses import SynergyLoss

VARIANTS = ('dks', 'ds', 'dks_cp', 'baseline')


def variant_model_cfg(cfg: Config, variant: str) -> dict:
    """The model config of one benchmarked variant.

    ``dks``: the config as given; ``ds``: the same with alpha = 0;
    ``dks_cp``: with gradient checkpointing in the branches; ``baseline``:
    the plain MMPretrain model of the same backbone and head.
    """
    if variant == 'baseline':
        return plain_model_config(cfg).model
    model = cfg.model.copy()
    if variant == 'ds':
        model.aux_head = dict(model.aux_head, synergy_loss=dict(alpha=0.0))
    elif variant == 'dks_cp':
        model.aux_neck = dict(
            model.aux_neck,
            branches=[dict(b, with_cp=True) for b in model.aux_neck.branches])
    return model


def build(cfg: Config, variant: str, device: str) -> nn.Module:
    """One variant (see :func:`variant_model_cfg`), initialised, on
    ``device``."""
    model = MODELS.build(variant_model_cfg(cfg, variant))
    model.init_weights()
    return model.to(device)


def fake_batch(cfg: Config, batch_size: int, size: int,
               device: str) -> Tuple[torch.Tensor, List[DataSample]]:
    """Random images of the config's input channels, labels cycling
    through its classes."""
    in_channels = cfg.model.backbone.get('in_channels', 3)
    num_classes = cfg.model.head.num_classes
    inputs = torch.randn(batch_size, in_channels, size, size, device=device)
    samples = [
        DataSample().set_gt_label(i % num_classes).to(device)
        for i in range(batch_size)
    ]
    return inputs, samples


def sync_fn(device: str) -> Callable[[], None]:
    """What waits for ``device`` to finish its queued work."""
    if device.startswith('cuda'):
        return torch.cuda.synchronize
    return lambda: None


def forward_backward_fn(model: nn.Module, inputs, samples,
                        amp: bool = False) -> Callable[[], dict]:
    """The forward and backward of a training step, into fresh gradients;
    the step returns its loss terms."""
    model.train()
    device_type = inputs.device.type

    def forward_backward() -> dict:
        with torch.autocast(device_type, enabled=amp):
            losses = model(inputs, samples, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        model.zero_grad(set_to_none=True)
        loss.backward()
        return losses

    return forward_backward


def train_step_fn(model: nn.Module,
                  inputs,
                  samples,
                  amp: bool = False,
                  compile_mode: Optional[str] = None) -> Callable[[], dict]:
    """One SGD step: forward, backward and the optimizer update.

    Args:
        model (nn.Module): The model, in training mode.
        inputs (Tensor): Images, (N, C, H, W).
        samples (list[DataSample]): Their labels.
        amp (bool): Under autocast (no loss scaler: a scaler's overflow
            check waits for the GPU mid-step). Defaults to False.
        compile_mode (str, optional): ``torch.compile`` the whole step, as
            MMEngine's ``compile=True`` compiles ``train_step`` (forward,
            backward, update); ``'default'`` or a ``torch.compile`` mode
            (``'reduce-overhead'`` adds CUDA graphs). Defaults to None
            (eager).

    Returns:
        callable: The step; it returns the loss terms it trained on.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    forward_backward = forward_backward_fn(model, inputs, samples, amp)

    def step() -> dict:
        losses = forward_backward()
        optimizer.step()
        return losses

    if compile_mode is None:
        return step
    return torch.compile(
        step, mode=None if compile_mode == 'default' else compile_mode)


class _OperatorLog(TorchDispatchMode):
    """Records the name of every operator that computes a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.names: List[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Views and queries (a dtype, a size) launch no kernel.
        if not func.is_view and any(
                isinstance(o, torch.Tensor) for o in (
                    out if isinstance(out, (tuple, list)) else (out, ))):
            self.names.append(func.overloadpacket.__name__)
        return out


def operators(fn: Callable[[], None]) -> List[str]:
    """The operators ``fn`` runs that compute a tensor, in order.

    A step whose GPU work is short is bound by the host, which pays for
    every operator it dispatches and launches; their number is the same on
    any device (up to how an optimizer batches its updates) and does not
    vary from run to run.
    """
    with _OperatorLog() as log:
        fn()
    return log.names


class _ForwardLogits(nn.Module):
    """A DKS model's ``forward_logits`` as a module's forward, which is
    what :class:`FlopAnalyzer` traces."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        return self.model.forward_logits(inputs)


def _attention_flops(inputs: list, outputs: list) -> int:
    """Multiply-adds of ``scaled_dot_product_attention``: Q K^T and the
    weighted sum of V, which MMEngine's FlopAnalyzer would count as 0 (its
    ViT counts then miss the attention that MMPretrain's metafiles
    include)."""
    query, key, value = (get_shape(x) for x in inputs[:3])
    return math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])


def flops_and_params(model: nn.Module, inputs: torch.Tensor,
                     training: bool) -> Dict[str, int]:
    """Forward FLOPs of one image and the parameter count; ``training``
    counts every classifier of a DKS model, else only the deployed path."""
    model.eval()
    module = _ForwardLogits(model) if training else model
    analyzer = FlopAnalyzer(module, (inputs[:1], )).set_op_handle(
        'aten::scaled_dot_product_attention', _attention_flops)
    # Modules a forward does not call (losses, dropout at eval) cost
    # nothing: a warning line for each is noise.
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = analyzer.total()
    return dict(
        flops=int(flops), params=sum(p.numel() for p in model.parameters()))


def synergy_loss_fn(model: nn.Module,
                    inputs: torch.Tensor,
                    amp: bool = False,
                    fused: Optional[bool] = None) -> Callable[[], None]:
    """Forward and backward of the synergy loss alone, on the logits of the
    model's K classifiers for ``inputs`` (half-precision ones with
    ``amp``), with the model's loss or a copy with another ``fused``."""
    with torch.no_grad(), torch.autocast(inputs.device.type, enabled=amp):
        logits = torch.stack(model.forward_logits(inputs))
    logits.requires_grad_()
    loss = model.aux_head.synergy_loss
    if fused is not None:
        loss = copy.copy(loss)
        loss.fused = fused
    return lambda: loss(logits).backward()


def stripped(cfg: Config, dks: nn.Module, device: str) -> nn.Module:
    """The deployed model: the plain model with the DKS main weights."""
    plain = MODELS.build(plain_model_config(cfg).model).to(device)
    kept, _ = strip_state_dict(dks.state_dict(), dks.auxiliary_modules)
    load_exactly(plain, kept)
    return plain.eval()


def synergy_loss_steps(num_classifiers: int, batch_size: int,
                       num_classes: int,
                       device: str) -> Dict[str, Callable[[], None]]:
    """Forward + backward of the synergy loss on random logits: ``ours``
    (fused on CUDA), ``eager`` (the closed form; CUDA only, where it
    differs from ``ours``) and ``loop`` (:func:`reference_synergy`)."""
    logits = torch.randn(
        num_classifiers, batch_size, num_classes, device=device,
        requires_grad=True)
    losses = dict(ours=SynergyLoss())
    if device.startswith('cuda'):
        losses['eager'] = SynergyLoss(fused=False)
    losses['loop'] = reference_synergy
    return {
        name: (lambda loss=loss: loss(logits).backward())
        for name, loss in losses.items()
    }


def activation_memory_mb(model: nn.Module, inputs: torch.Tensor,
                         samples: list) -> float:
    """Memory of the tensors a training forward keeps for backward, in MiB.

    Counted through autograd's saved-tensor hooks, so it is exact and the
    same on any device (parameters excluded; storages counted once). This
    is the part of training memory that DKS adds to and that gradient
    checkpointing removes; on CUDA, :func:`cuda_peak_mb` gives the
    allocator's view as well.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen, total = set(), 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and ptr not in seen:
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(inputs, samples, mode='loss')
    return total / 2**20


def cuda_peak_mb(model: nn.Module, inputs: torch.Tensor,
                 samples: list) -> float:
    """CUDA allocator peak of a training step beyond the steady state."""
    step = train_step_fn(model, inputs, samples)
    step()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def loss_differences(reference: Dict[str, torch.Tensor],
                     other: Dict[str, torch.Tensor]) -> float:
    """Largest relative difference between two steps' loss terms."""
    return max(((other[k].float() - v.float()).abs() /
                v.float().abs().clamp_min(1e-12)).item()
               for k, v in reference.items() if 'loss' in k)
