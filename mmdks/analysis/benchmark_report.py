"""Run the DKS benchmark on a config, judge the cost targets and write the
report (what tools/analysis_tools/benchmark_dks.py prints and saves)."""
import json
import os
import os.path as osp
import platform
import statistics
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config

from mmdks.analysis import benchmark as bench
from mmdks.analysis.timing import (BlockTimes, Ratio, block_ratio, gpu_time,
                                   host_bound, time_in_blocks, verdict)
from mmdks.utils import atomic_outputs

PRECISIONS = dict(fp32=('', ), amp=('_amp', ), both=('', '_amp'))
# Step ratios (numerator, denominator), each per precision where both
# steps were timed.
STEP_RATIOS = (('dks', 'ds'), ('loss', 'dks'), ('loss_eager', 'dks'),
               ('dks', 'baseline'), ('dks_cp', 'dks'))
# Relative difference of the compiled step's losses from eager's that
# tests/test_reliability.py's compile test allows.
COMPILE_TOLERANCE = 1e-4


@dataclass
class BenchmarkOptions:
    """What to time and how.

    Args:
        batch_size (int): Images per step.
        input_size (int): Square input side.
        device (str): ``'cpu'`` or ``'cuda'``.
        precision (str): ``'fp32'``, ``'amp'`` (autocast) or ``'both'``.
        blocks (int): Alternating blocks (see
            :func:`~mmdks.analysis.timing.time_in_blocks`).
        block_steps (int): Steps of each kind per block.
        gpu_steps (int): Steps profiled for the GPU time (CUDA).
        variants (Sequence[str]): Models to train, from
            :data:`~mmdks.analysis.benchmark.VARIANTS`; ``dks`` always.
        compile_loss (bool): ``torch.compile`` the synergy loss.
        compile_step (Sequence[str]): ``torch.compile`` modes to time the
            whole DKS step with, beside eager (``'default'`` is MMEngine's
            ``compile=True``, ``'reduce-overhead'`` adds CUDA graphs).
        cfg_options (dict, optional): Overrides merged into the config,
            as ``--cfg-options`` of training does.
    """
    batch_size: int = 16
    input_size: int = 64
    device: str = 'cpu'
    precision: str = 'fp32'
    blocks: int = 5
    block_steps: int = 3
    gpu_steps: int = 3
    variants: Sequence[str] = bench.VARIANTS
    compile_loss: bool = False
    compile_step: Sequence[str] = ()
    cfg_options: Optional[dict] = None


def hardware(device: str) -> str:
    """The device's name (CPU: model, cores, torch threads)."""
    if device == 'cuda':
        return f'{torch.cuda.get_device_name()}, torch {torch.__version__}'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, ' \
        f'{torch.get_num_threads()} threads'


def run_benchmark(config: str, opts: BenchmarkOptions) -> dict:
    """Time, count and weigh DKS against its variants on one batch.

    Returns:
        dict: The report: settings, per-step times (``steps``: wall and
        enqueue seconds per block, GPU busy seconds and operations,
        host-bound flag), memory, FLOPs and parameters, inference, the
        loss alone, operator counts, ratios and targets.
    """
    cfg = Config.fromfile(config)
    if opts.cfg_options:
        cfg.merge_from_dict(opts.cfg_options)
    dev = opts.device
    variants = ['dks'] + [v for v in opts.variants if v != 'dks']
    inputs, samples = bench.fake_batch(cfg, opts.batch_size,
                                       opts.input_size, dev)
    report = dict(config=config, hardware=hardware(dev), **asdict(opts))
    report['variants'] = variants
    models = {v: bench.build(cfg, v, dev) for v in variants}
    if opts.compile_loss:
        for model in models.values():
            if hasattr(model, 'aux_head'):
                model.aux_head.synergy_loss.compile()
    steps, report['compiled_loss_difference'] = {}, {}
    for suffix in PRECISIONS[opts.precision]:
        amp = bool(suffix)
        steps.update({
            v + suffix: bench.train_step_fn(m, inputs, samples, amp)
            for v, m in models.items()
        })
        steps['loss' + suffix] = bench.synergy_loss_fn(
            models['dks'], inputs, amp)
        if dev == 'cuda':
            steps['loss_eager' + suffix] = bench.synergy_loss_fn(
                models['dks'], inputs, amp, fused=False)
        for mode in opts.compile_step:
            name = f'dks_compile-{mode}{suffix}'
            steps[name] = bench.train_step_fn(models['dks'], inputs,
                                              samples, amp, mode)
            eager = bench.forward_backward_fn(models['dks'], inputs,
                                              samples, amp)()
            report['compiled_loss_difference'][name] = \
                bench.loss_differences(eager, steps[name]())
    report['steps'] = _timed(steps, opts)
    report['activation_memory_mib'] = {
        v: bench.activation_memory_mb(m, inputs, samples)
        for v, m in models.items()
    }
    if dev == 'cuda':
        report['cuda_peak_mib'] = {
            v: bench.cuda_peak_mb(m, inputs, samples)
            for v, m in models.items()
        }
    baseline = models.get('baseline') or bench.build(cfg, 'baseline', dev)
    deployed = bench.stripped(cfg, models['dks'], dev)
    report['complexity'] = dict(
        dks_train=bench.flops_and_params(models['dks'], inputs, True),
        baseline=bench.flops_and_params(baseline, inputs, False),
        stripped=bench.flops_and_params(deployed, inputs, False))
    baseline.eval()
    with torch.no_grad():
        report['inference'] = _timed(
            dict(stripped=lambda: deployed(inputs),
                 baseline=lambda: baseline(inputs)), opts)
    report['synergy_loss'] = {
        f'K{k}': _timed(bench.synergy_loss_steps(k, 256, 1000, dev),
                        opts, gpu=False)
        for k in (3, 4)
    }
    counted = {'dks': models['dks']}
    counted.update({v: models[v] for v in ('ds', 'baseline') if v in models})
    report['operators'] = {
        v: len(bench.operators(
            bench.forward_backward_fn(m, inputs, samples)))
        for v, m in counted.items()
    }
    report['operators']['synergy_loss'] = len(bench.operators(
        bench.synergy_loss_fn(models['dks'], inputs, fused=False)))
    report['ratios'] = ratios(report)
    report['targets'] = targets(report)
    return report


def _timed(steps: dict, opts: BenchmarkOptions, gpu: bool = True) -> dict:
    """Per step: wall and enqueue seconds (median over blocks, and each
    block's), GPU busy seconds and operations, and whether host-bound."""
    times: Dict[str, BlockTimes] = time_in_blocks(
        steps, opts.blocks, opts.block_steps, bench.sync_fn(opts.device))
    out = {}
    for name, t in times.items():
        gpu_s, gpu_ops = gpu_time(steps[name], opts.gpu_steps) \
            if gpu and opts.device == 'cuda' else (None, None)
        enqueue = statistics.median(t.enqueue)
        out[name] = dict(
            wall_s=statistics.median(t.wall), wall_blocks=t.wall,
            enqueue_s=enqueue, enqueue_blocks=t.enqueue, gpu_s=gpu_s,
            gpu_ops=gpu_ops, host_bound=host_bound(enqueue, gpu_s))
    return out


def _ratio(times: dict, num: str, den: str) -> dict:
    """Wall-time ratio over blocks, with the GPU-time ratio beside it."""
    a, b = times[num], times[den]
    r = block_ratio(a['wall_blocks'], b['wall_blocks'])
    return dict(median=r.median, low=r.low, high=r.high,
                gpu=None if a['gpu_s'] is None else a['gpu_s'] / b['gpu_s'],
                host_bound=[a['host_bound'], b['host_bound']])


def ratios(report: dict) -> dict:
    """Every step ratio the report can form, named ``num/den``."""
    steps, out = report['steps'], {}
    compiled = [(f'dks_compile-{m}', 'dks') for m in report['compile_step']]
    for suffix in PRECISIONS[report['precision']]:
        for num, den in STEP_RATIOS + tuple(compiled):
            num, den = num + suffix, den + suffix
            if num in steps and den in steps:
                out[f'{num}/{den}'] = _ratio(steps, num, den)
    out['stripped/baseline'] = _ratio(report['inference'], 'stripped',
                                      'baseline')
    for k, times in report['synergy_loss'].items():
        out[f'loop/ours ({k})'] = _ratio(times, 'loop', 'ours')
    return out


def _judged(ratio: dict, high: float, low: float = -float('inf'),
            scale: float = 1.0) -> dict:
    """A ratio against its limits, every block counted (see
    :func:`~mmdks.analysis.timing.verdict`)."""
    r = Ratio(ratio['median'], ratio['low'], ratio['high']).scaled(scale)
    return dict(verdict=verdict(r, high, low), value=r.median, low=r.low,
                high=r.high)


def _exact(met: bool, value: Optional[float] = None) -> dict:
    """A target measured exactly, once."""
    return dict(verdict='met' if met else 'missed', value=value, low=None,
                high=None)


def targets(report: dict) -> dict:
    """Where each cost target stands: ``verdict`` (met, missed or, for
    timed ratios whose blocks straddle the limit, unresolved), the median
    ``value`` and the blocks' ``low`` and ``high``."""
    c, r = report['complexity'], report['ratios']
    flop_ratio = c['dks_train']['flops'] / c['baseline']['flops']
    out = {
        'stripped params == baseline':
        _exact(c['stripped']['params'] == c['baseline']['params']),
        'stripped FLOPs == baseline':
        _exact(c['stripped']['flops'] == c['baseline']['flops']),
        'stripped/baseline latency in 1.00 +/- 0.03':
        _judged(r['stripped/baseline'], 1.03, 0.97),
        'synergy loss >= 3x faster than the loop (K=4)':
        _judged(r['loop/ours (K4)'], float('inf'), 3.0),
    }
    for suffix in PRECISIONS[report['precision']]:
        label = ' (AMP)' if suffix else ''
        for name, key, high, scale in (
                ('synergy loss <= 1% of a DKS step', 'loss/dks', 0.01, 1),
                ('DKS step / DS step <= 1.02', 'dks/ds', 1.02, 1),
                ('DKS/baseline step <= 1.10 x FLOP ratio', 'dks/baseline',
                 1.10, 1 / flop_ratio),
                ('with_cp costs <= 30% step time', 'dks_cp/dks', 1.30, 1)):
            num, den = key.split('/')
            key = f'{num}{suffix}/{den}{suffix}'
            if key in r:
                out[name + label] = _judged(r[key], high, scale=scale)
    mem = report.get('cuda_peak_mib', report['activation_memory_mib'])
    if 'dks_cp' in mem:
        cut = 1 - mem['dks_cp'] / mem['dks']
        out['with_cp cuts training memory >= 30%'] = _exact(cut >= 0.3, cut)
    for name, diff in report['compiled_loss_difference'].items():
        out[f'{name}: losses within {COMPILE_TOLERANCE:g} of eager'] = \
            _exact(diff <= COMPILE_TOLERANCE, diff)
    return out


def _ms(value: Optional[float]) -> str:
    return '-' if value is None else f'{value * 1e3:.3f}'


def _times_table(title: str, times: dict, device: str) -> list:
    """Markdown rows: median wall time, the blocks' range and, on CUDA,
    the host's enqueue time, the GPU's busy time and operations."""
    if device != 'cuda':
        rows = [f'| {title} | wall (ms) | blocks (ms) |', '|---|---|---|']
        return rows + [
            f"| {k} | {_ms(v['wall_s'])} | {_ms(min(v['wall_blocks']))}-"
            f"{_ms(max(v['wall_blocks']))} |" for k, v in times.items()
        ]
    rows = [f'| {title} | wall (ms) | blocks (ms) | enqueue (ms) | '
            'GPU busy (ms) | GPU ops | host-bound |',
            '|---|---|---|---|---|---|---|']
    return rows + [
        f"| {k} | {_ms(v['wall_s'])} | {_ms(min(v['wall_blocks']))}-"
        f"{_ms(max(v['wall_blocks']))} | {_ms(v['enqueue_s'])} | "
        f"{_ms(v['gpu_s'])} | "
        f"{'-' if v['gpu_ops'] is None else round(v['gpu_ops'])} | "
        f"{'yes' if v['host_bound'] else 'no'} |" for k, v in times.items()
    ]


def _value(value: Optional[float]) -> str:
    # Four significant digits: a loss's share of a step can be 1e-4.
    return '' if value is None else f'{value:#.4g}'


def markdown(report: dict) -> str:
    """The report as Markdown."""
    dev = report['device']
    lines = [
        f"# DKS benchmark: {osp.basename(report['config'])}", '',
        f"{report['hardware']}; batch {report['batch_size']}, input "
        f"{report['input_size']}x{report['input_size']}, precision "
        f"{report['precision']}; {report['blocks']} alternating blocks of "
        f"{report['block_steps']} steps, each step from an idle device to "
        'an idle device; wall = median of the block medians'
        + (f"; GPU busy time and operations from the profiler, "
           f"{report['gpu_steps']} steps" if dev == 'cuda' else '')
        + ('; synergy loss compiled' if report['compile_loss'] else '')
        + (f"; config overrides {report['cfg_options']}"
           if report['cfg_options'] else '') + '.', ''
    ]
    lines += _times_table('training step', report['steps'], dev)
    for key in ('activation_memory_mib', 'cuda_peak_mib'):
        if key in report:
            lines += ['', f'| {key} | MiB |', '|---|---|']
            lines += [f'| {k} | {v:.1f} |' for k, v in report[key].items()]
    lines += ['', '| model | params | FLOPs |', '|---|---|---|']
    lines += [
        f"| {k} | {v['params']:,} | {v['flops']:,} |"
        for k, v in report['complexity'].items()
    ]
    lines += [''] + _times_table('inference', report['inference'], dev)
    for k, times in report['synergy_loss'].items():
        lines += [''] + _times_table(
            f'synergy loss {k}, B=256, C=1000', times, dev)
    ops = report['operators']
    lines += ['', '| operators run by forward + backward (eager) | count |',
              '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in ops.items()]
    lines.append(
        f"| synergy loss / dks | {ops['synergy_loss'] / ops['dks']:.1%} |")
    if report['compile_loss']:
        lines += ['', 'Operators are counted in eager mode: the counter '
                  'makes torch.compile fall back to eager.']
    lines += ['', '| ratio (wall time) | median | blocks | GPU time ratio | '
              'host-bound |', '|---|---|---|---|---|']
    for name, v in report['ratios'].items():
        bound = '/'.join('-' if b is None else 'yes' if b else 'no'
                         for b in v['host_bound'])
        lines.append(f"| {name} | {_value(v['median'])} | "
                     f"{_value(v['low'])}-{_value(v['high'])} | "
                     f"{_value(v['gpu'])} | {bound} |")
    lines += ['', '| target | verdict | median | blocks |',
              '|---|---|---|---|']
    for name, t in report['targets'].items():
        spread = '' if t['low'] is None else \
            f"{_value(t['low'])}-{_value(t['high'])}"
        lines.append(f"| {name} | {t['verdict']} | {_value(t['value'])} | "
                     f'{spread} |')
    return '\n'.join(lines) + '\n'


def report_paths(out: str) -> List[str]:
    """The JSON report ``out`` and its Markdown twin beside it."""
    return [out, osp.splitext(out)[0] + '.md']


def save(report: dict, text: str, out: str) -> None:
    """Write the report as JSON to ``out`` and its Markdown beside it, both
    or neither (:func:`report_paths`)."""
    with atomic_outputs(report_paths(out)) as (json_temp, md_temp):
        with open(json_temp, 'w') as f:
            json.dump(report, f, indent=2)
        with open(md_temp, 'w') as f:
            f.write(text)
