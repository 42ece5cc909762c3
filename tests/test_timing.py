"""The benchmark's statistics on synthetic steps of known cost, timed by a
simulated clock: exact, and independent of this machine's load."""
import pytest

from mmdks.analysis.timing import (Ratio, block_ratio, busy_time,
                                   host_bound, time_in_blocks, verdict)


class FakeDevice:
    """A host and a device sharing a clock. A step spends ``host`` seconds
    enqueuing; its device work ends ``gpu`` seconds after it began, and
    never before the host has enqueued all of it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.done = 0.0
        self.calls = []

    def clock(self) -> float:
        return self.now

    def sync(self) -> None:
        self.now = max(self.now, self.done)

    def step(self, name: str, host, gpu):
        """A step whose costs may vary with the call (callables of the call
        index)."""
        def run() -> None:
            i = sum(c == name for c in self.calls)
            self.calls.append(name)
            start = self.now
            self.now += host(i) if callable(host) else host
            self.done = max(self.done, self.now,
                            start + (gpu(i) if callable(gpu) else gpu))
        return run


def test_wall_and_enqueue_times_of_known_steps():
    dev = FakeDevice()
    steps = dict(gpu_bound=dev.step('gpu_bound', host=0.01, gpu=0.03),
                 host_bound=dev.step('host_bound', host=0.02, gpu=0.01))
    times = time_in_blocks(steps, blocks=3, block_steps=4, sync=dev.sync,
                           clock=dev.clock)
    assert times['gpu_bound'].wall == pytest.approx([0.03] * 3)
    assert times['gpu_bound'].enqueue == pytest.approx([0.01] * 3)
    assert times['host_bound'].wall == pytest.approx([0.02] * 3)
    assert times['host_bound'].enqueue == pytest.approx([0.02] * 3)
    assert host_bound(0.02, 0.01) and not host_bound(0.01, 0.03)
    assert host_bound(0.01, None) is None


def test_blocks_alternate_the_order_after_warmup():
    dev = FakeDevice()
    steps = {n: dev.step(n, 0.001, 0.001) for n in 'ab'}
    time_in_blocks(steps, blocks=3, block_steps=2, sync=dev.sync,
                   clock=dev.clock, warmup=1)
    assert ''.join(dev.calls) == 'ab' + 'aabb' + 'bbaa' + 'aabb'


def test_each_block_reports_the_median_of_its_steps():
    # One slow call in a block of three does not move its median.
    dev = FakeDevice()
    steps = dict(a=dev.step('a', lambda i: 0.5 if i == 3 else 0.01, 0.0))
    times = time_in_blocks(steps, blocks=2, block_steps=3, sync=dev.sync,
                           clock=dev.clock, warmup=2)
    assert times['a'].wall == pytest.approx([0.01, 0.01])


@pytest.mark.parametrize('cost,expected', [(1.01, 'met'), (1.05, 'missed'),
                                           (1.018, 'unresolved')])
def test_a_ratio_is_judged_on_every_block(cost, expected):
    # The numerator's cost jitters by +-0.4% over blocks.
    dev = FakeDevice()
    jitter = [1.0, 1.004, 0.996, 1.004, 0.996]
    steps = dict(dks=dev.step('dks', lambda i: cost * jitter[i - 2], 0),
                 ds=dev.step('ds', 1.0, 0))
    times = time_in_blocks(steps, blocks=5, block_steps=1, sync=dev.sync,
                           clock=dev.clock)
    ratio = block_ratio(times['dks'].wall, times['ds'].wall)
    assert ratio.median == pytest.approx(cost)
    assert ratio.low == pytest.approx(cost * 0.996)
    assert ratio.high == pytest.approx(cost * 1.004)
    assert verdict(ratio, 1.02) == expected


def test_host_jitter_on_host_bound_steps_is_no_finding():
    # The ResNet-152: the GPU runs either step in 60 ms, the host
    # needs 75-99 ms to enqueue it, and the host's speed drifts from block
    # to block. Wall times follow the host; the ratio's blocks straddle
    # the limit, and both steps are flagged host-bound.
    dev = FakeDevice()
    host = [0.080, 0.080, 0.075, 0.099, 0.080, 0.090, 0.078, 0.095]
    steps = dict(dks=dev.step('dks', lambda i: host[i], 0.060),
                 ds=dev.step('ds', lambda i: host[-1 - i], 0.060))
    times = time_in_blocks(steps, blocks=6, block_steps=1, sync=dev.sync,
                           clock=dev.clock)
    ratio = block_ratio(times['dks'].wall, times['ds'].wall)
    assert ratio.low < 1 < 1.02 < ratio.high
    assert verdict(ratio, 1.02) == 'unresolved'
    assert all(host_bound(e, 0.060) for t in times.values()
               for e in t.enqueue)


def test_verdict_with_two_sided_limits_and_scaling():
    assert verdict(Ratio(1.0, 0.98, 1.02), 1.03, 0.97) == 'met'
    assert verdict(Ratio(0.9, 0.89, 0.91), 1.03, 0.97) == 'missed'
    assert verdict(Ratio(0.97, 0.96, 0.98), 1.03, 0.97) == 'unresolved'
    assert Ratio(2.0, 1.0, 4.0).scaled(0.5) == Ratio(1.0, 0.5, 2.0)


def test_busy_time_is_the_union_of_intervals():
    assert busy_time([]) == 0
    assert busy_time([(0, 2), (1, 3), (5, 6), (5.5, 5.7)]) == 4
    assert busy_time([(4, 5), (0, 1)]) == 2
