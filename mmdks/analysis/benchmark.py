"""Measure what DKS costs: training step, memory, FLOPs, deployed latency,
and the synergy loss against a loop over pairs."""
import statistics
import time
from typing import Callable, Dict, List

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.utils._python_dispatch import TorchDispatchMode

from mmdks.analysis.reference_loss import reference_synergy
from mmdks.apis import plain_model_config, strip_state_dict
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
    model = MODELS.build(variant_model_cfg(cfg, variant))
    model.init_weights()
    return model.to(device)


def fake_batch(batch_size: int, size: int, in_channels: int,
               num_classes: int, device: str):
    inputs = torch.randn(batch_size, in_channels, size, size, device=device)
    samples = [
        DataSample().set_gt_label(i % num_classes).to(device)
        for i in range(batch_size)
    ]
    return inputs, samples


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def median_times(steps: Dict[str, Callable[[], None]], repeats: int,
                 device: str, warmup: int = 2) -> Dict[str, float]:
    """Median wall time of each step in seconds.

    The steps are timed in turn, round after round, so that drift of the
    machine (clock boost, other load) reaches all of them alike; comparing
    ratios of these medians is the point.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def forward_backward_fn(model: nn.Module, inputs, samples,
                        amp: bool = False) -> Callable[[], None]:
    """The forward and backward of a training step, into fresh gradients."""
    model.train()
    device_type = inputs.device.type

    def forward_backward() -> None:
        with torch.autocast(device_type, enabled=amp):
            losses = model(inputs, samples, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        model.zero_grad(set_to_none=True)
        loss.backward()

    return forward_backward


def train_step_fn(model: nn.Module, inputs, samples,
                  amp: bool = False) -> Callable[[], None]:
    """One SGD step: forward, backward and the optimizer update."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    forward_backward = forward_backward_fn(model, inputs, samples, amp)

    def step() -> None:
        forward_backward()
        optimizer.step()

    return step


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


class _AllClassifiers(nn.Module):
    """Forward through every classifier, for FLOP counting of training."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        m = self.model
        feats = m.backbone(x)
        logits = m.aux_head(m.aux_neck(feats))
        return logits + [m.head(m._main_feats(feats))]


def flops_and_params(model: nn.Module, inputs: torch.Tensor,
                     training: bool) -> Dict[str, int]:
    model.eval()
    module = _AllClassifiers(model) if training else model
    with torch.no_grad():
        flops = FlopAnalyzer(module, (inputs[:1], )).total()
    return dict(
        flops=int(flops), params=sum(p.numel() for p in model.parameters()))


def synergy_loss_fn(model: nn.Module,
                    inputs: torch.Tensor) -> Callable[[], None]:
    """Forward and backward of the synergy loss alone, on the logits of the
    model's K classifiers for ``inputs``."""
    with torch.no_grad():
        logits = torch.stack(_AllClassifiers(model)(inputs))
    logits.requires_grad_()
    loss = model.aux_head.synergy_loss
    return lambda: loss(logits).backward()


def stripped(cfg: Config, dks: nn.Module, device: str) -> nn.Module:
    """The deployed model: the plain model with the DKS main weights."""
    plain = MODELS.build(plain_model_config(cfg).model).to(device)
    kept, _ = strip_state_dict(dks.state_dict(), dks.auxiliary_modules)
    plain.load_state_dict(kept, strict=True)
    return plain.eval()


def synergy_timings(num_classifiers: int, batch_size: int, num_classes: int,
                    repeats: int, device: str) -> Dict[str, float]:
    """Forward + backward time of ours and of the loop form."""
    logits = torch.randn(
        num_classifiers, batch_size, num_classes, device=device,
        requires_grad=True)
    ours = SynergyLoss().to(device)
    steps = dict(ours=lambda: ours(logits).backward(),
                 loop=lambda: reference_synergy(logits).backward())
    return median_times(steps, repeats, device)


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


def _in_channels(cfg: Config) -> int:
    return cfg.model.backbone.get('in_channels', 3)


def _num_classes(cfg: Config) -> int:
    return cfg.model.head.num_classes
