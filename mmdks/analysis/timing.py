"""Timing training steps so that a ratio of two of them means something.

A GPU step has three times: the wall time (the host waits for the device
at the end, as MMEngine does when it logs every iteration), the host's
enqueue time (until the step's Python call returns) and the GPU's busy
time (what its kernels take). Where the host needs as long to enqueue a
step as the GPU to run it, the step is host-bound: its wall time is the
host's, jitter included, and says nothing about the device's work.

Steps are timed in alternating blocks (forward order, then reverse), so
that drift reaches every step alike, and every ratio comes with its
spread over the blocks: a ratio whose blocks straddle a limit is
unresolved, not met or missed.
"""
import statistics
import time
from typing import (Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Sequence, Tuple)

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile


class BlockTimes(NamedTuple):
    """Seconds per step, one value per block (the median of its steps)."""
    wall: List[float]  # call to device idle again
    enqueue: List[float]  # call to return: the host's share


class Ratio(NamedTuple):
    """A ratio over blocks: the median of the per-block ratios and their
    range."""
    median: float
    low: float
    high: float

    def scaled(self, factor: float) -> 'Ratio':
        return Ratio(*(value * factor for value in self))


def time_in_blocks(steps: Dict[str, Callable[[], object]],
                   blocks: int,
                   block_steps: int,
                   sync: Callable[[], None] = lambda: None,
                   clock: Callable[[], float] = time.perf_counter,
                   warmup: int = 2) -> Dict[str, BlockTimes]:
    """Time every step in ``blocks`` blocks of ``block_steps`` steps.

    Block ``i`` runs the steps in the given order for even ``i``, in
    reverse for odd ``i``; each step runs ``block_steps`` times in a row,
    each call timed from an idle device to an idle device.

    Args:
        steps (dict[str, callable]): Named steps, each one training step.
        blocks (int): Number of blocks (>= 1).
        block_steps (int): Steps of each name per block (>= 1).
        sync (callable): Waits for the device (``torch.cuda.synchronize``
            on CUDA; nothing on the CPU, where a call returns when done).
        clock (callable): Seconds, monotonic.
        warmup (int): Untimed calls of each step first.

    Returns:
        dict[str, BlockTimes]: Per step, one wall and one enqueue time
        per block, in block order.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync()
    names = list(steps)
    wall: Dict[str, List[float]] = {name: [] for name in names}
    enqueue: Dict[str, List[float]] = {name: [] for name in names}
    for block in range(blocks):
        for name in names if block % 2 == 0 else names[::-1]:
            walls, enqueues = [], []
            for _ in range(block_steps):
                start = clock()
                steps[name]()
                returned = clock()
                sync()
                walls.append(clock() - start)
                enqueues.append(returned - start)
            wall[name].append(statistics.median(walls))
            enqueue[name].append(statistics.median(enqueues))
    return {name: BlockTimes(wall[name], enqueue[name]) for name in names}


def block_ratio(numerator: Sequence[float],
                denominator: Sequence[float]) -> Ratio:
    """``numerator / denominator`` block by block."""
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return Ratio(statistics.median(ratios), min(ratios), max(ratios))


def verdict(ratio: Ratio, high: float, low: float = -float('inf')) -> str:
    """``'met'`` where every block lies in ``[low, high]``, ``'missed'``
    where every block lies outside it on the same side, else
    ``'unresolved'`` (the blocks disagree: noise at least as large as the
    margin)."""
    if low <= ratio.low and ratio.high <= high:
        return 'met'
    if ratio.low > high or ratio.high < low:
        return 'missed'
    return 'unresolved'


def busy_time(intervals: Iterable[Tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals: the time a device
    was busy, however its kernels overlapped."""
    total, reach = 0.0, -float('inf')
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def gpu_time(step: Callable[[], object],
             steps: int = 3) -> Tuple[float, float]:
    """GPU busy seconds and device operations (kernels, copies, fills)
    per step, from the profiler's records of what the device ran: unlike
    CUDA events around a step, not inflated by the gaps where the GPU
    waits for the host.

    Args:
        step (callable): One training step on CUDA.
        steps (int): Steps profiled.

    Returns:
        tuple[float, float]: Busy seconds per step, device operations per
        step.
    """
    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    device = [(e.time_range.start, e.time_range.end) for e in prof.events()
              if e.device_type == DeviceType.CUDA]
    return busy_time(device) / 1e6 / steps, len(device) / steps


def host_bound(enqueue: float, gpu: Optional[float]) -> Optional[bool]:
    """Whether the host needs as long to enqueue a step as the GPU to run
    it (None without a GPU time)."""
    return None if gpu is None else enqueue >= gpu
