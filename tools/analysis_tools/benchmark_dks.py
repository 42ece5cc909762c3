"""Benchmark DKS against deep supervision (alpha = 0) and the plain
MMPretrain model, in one process and one run, and check the cost targets.

Example::

    python tools/analysis_tools/benchmark_dks.py \\
        configs/dks_resnet18_8xb32_in1k.py --batch-size 16 --input-size 64 \\
        --repeats 5 --out work_dirs/bench_r18.json
"""
import argparse
import json
import os
import os.path as osp
import platform

import torch
from mmengine.config import Config

from mmdks.analysis import benchmark as bench


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark DKS')
    parser.add_argument('config', help='a DKS config')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--input-size', type=int, default=64)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--amp', action='store_true',
                        help='also time AMP training steps (CUDA)')
    parser.add_argument(
        '--compile-loss', action='store_true',
        help='torch.compile the synergy loss of the DKS and DS models, as '
        "MMEngine's compile=True would (the loop comparison stays eager)")
    parser.add_argument('--out', default=None,
                        help='JSON report; a Markdown twin is written beside')
    return parser.parse_args()


def hardware(device: str) -> str:
    if device == 'cuda':
        return torch.cuda.get_device_name()
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, ' \
        f'{torch.get_num_threads()} threads'


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    dev, size, batch = args.device, args.input_size, args.batch_size
    inputs, samples = bench.fake_batch(batch, size, bench._in_channels(cfg),
                                       bench._num_classes(cfg), dev)
    report = dict(config=args.config, device=dev, hardware=hardware(dev),
                  batch_size=batch, input_size=size, repeats=args.repeats,
                  compile_loss=args.compile_loss)

    models = {v: bench.build(cfg, v, dev) for v in bench.VARIANTS}
    if args.compile_loss:
        for model in models.values():
            if hasattr(model, 'aux_head'):
                model.aux_head.synergy_loss.compile()
    steps = {
        v: bench.train_step_fn(m, inputs, samples)
        for v, m in models.items()
    }
    if args.amp:
        steps.update({
            f'{v}_amp': bench.train_step_fn(m, inputs, samples, amp=True)
            for v, m in models.items()
        })
    report['train_step_s'] = bench.median_times(steps, args.repeats, dev)
    report['activation_memory_mib'] = {
        v: bench.activation_memory_mb(m, inputs, samples)
        for v, m in models.items()
    }
    if dev == 'cuda':
        report['cuda_peak_mib'] = {
            v: bench.cuda_peak_mb(m, inputs, samples)
            for v, m in models.items()
        }
    deployed = bench.stripped(cfg, models['dks'], dev)
    report['complexity'] = dict(
        dks_train=bench.flops_and_params(models['dks'], inputs, True),
        baseline=bench.flops_and_params(models['baseline'], inputs, False),
        stripped=bench.flops_and_params(deployed, inputs, False))
    baseline = models['baseline'].eval()
    with torch.no_grad():
        report['inference_s'] = bench.median_times(
            dict(stripped=lambda: deployed(inputs),
                 baseline=lambda: baseline(inputs)), args.repeats, dev)
    report['synergy_loss_s'] = {
        f'K{k}': bench.synergy_timings(k, 256, 1000, args.repeats, dev)
        for k in (3, 4)
    }
    loss_step = bench.synergy_loss_fn(models['dks'], inputs)
    report['operators'] = {
        v: len(bench.operators(
            bench.forward_backward_fn(models[v], inputs, samples)))
        for v in ('dks', 'ds', 'baseline')
    }
    report['operators']['synergy_loss'] = len(bench.operators(loss_step))
    report['targets'] = targets(report, loss_step, args.repeats, dev)
    print_and_save(report, args.out)


def targets(report: dict, loss_step, repeats: int, dev: str) -> dict:
    """Where each target of the performance issue stands."""
    c, step = report['complexity'], report['train_step_s']
    mem = report.get('cuda_peak_mib', report['activation_memory_mib'])
    loss_s = bench.median_times(dict(loss=loss_step), repeats, dev)['loss']
    flop_ratio = c['dks_train']['flops'] / c['baseline']['flops']
    k4 = report['synergy_loss_s']['K4']
    return {
        'stripped params == baseline':
        (c['stripped']['params'] == c['baseline']['params'], None),
        'stripped FLOPs == baseline':
        (c['stripped']['flops'] == c['baseline']['flops'], None),
        'stripped/baseline latency in 1.00 +/- 0.03':
        (abs(report['inference_s']['stripped'] /
             report['inference_s']['baseline'] - 1) <= 0.03,
         report['inference_s']['stripped'] /
         report['inference_s']['baseline']),
        'synergy loss <= 1% of a DKS step':
        (loss_s / step['dks'] <= 0.01, loss_s / step['dks']),
        'DKS step / DS step <= 1.02':
        (step['dks'] / step['ds'] <= 1.02, step['dks'] / step['ds']),
        'DKS/baseline step <= 1.10 x FLOP ratio':
        (step['dks'] / step['baseline'] <= 1.10 * flop_ratio,
         step['dks'] / step['baseline'] / flop_ratio),
        'synergy loss >= 3x faster than the loop (K=4)':
        (k4['loop'] / k4['ours'] >= 3, k4['loop'] / k4['ours']),
        'with_cp cuts training memory >= 30%':
        (mem['dks_cp'] <= 0.7 * mem['dks'], 1 - mem['dks_cp'] / mem['dks']),
        'with_cp costs <= 30% step time':
        (step['dks_cp'] <= 1.3 * step['dks'], step['dks_cp'] / step['dks']),
    }


def print_and_save(report: dict, out: str) -> None:
    lines = [
        f"# DKS benchmark: {osp.basename(report['config'])}", '',
        f"{report['hardware']}; batch {report['batch_size']}, input "
        f"{report['input_size']}x{report['input_size']}, median of "
        f"{report['repeats']} after warm-up"
        f"{'; synergy loss compiled' if report['compile_loss'] else ''}.",
        '', '| training step | seconds |', '|---|---|'
    ]
    lines += [f'| {k} | {v:.4f} |' for k, v in report['train_step_s'].items()]
    for key in ('activation_memory_mib', 'cuda_peak_mib'):
        if key in report:
            lines += ['', f'| {key} | MiB |', '|---|---|']
            lines += [f'| {k} | {v:.1f} |' for k, v in report[key].items()]
    lines += ['', '| model | params | FLOPs |', '|---|---|---|']
    lines += [
        f"| {k} | {v['params']:,} | {v['flops']:,} |"
        for k, v in report['complexity'].items()
    ]
    lines += ['', '| inference | seconds |', '|---|---|']
    lines += [f'| {k} | {v:.4f} |' for k, v in report['inference_s'].items()]
    lines += ['', '| synergy loss, B=256, C=1000 | ours (s) | loop (s) | '
              'speed-up |', '|---|---|---|---|']
    lines += [
        f"| {k} | {v['ours']:.5f} | {v['loop']:.5f} | "
        f"{v['loop'] / v['ours']:.1f}x |"
        for k, v in report['synergy_loss_s'].items()
    ]
    ops = report['operators']
    lines += ['', '| operators run by forward + backward | count |',
              '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in ops.items()]
    lines.append(
        f"| synergy loss / dks | {ops['synergy_loss'] / ops['dks']:.1%} |")
    if report['compile_loss']:
        lines += ['', 'Operators are counted in eager mode: the counter '
                  'makes torch.compile fall back to eager.']
    lines += ['', '| target | met | measured |', '|---|---|---|']
    for name, (met, value) in report['targets'].items():
        shown = '' if value is None else f'{value:.3f}'
        lines.append(f"| {name} | {'yes' if met else 'NO'} | {shown} |")
    text = '\n'.join(lines) + '\n'
    print(text)
    if out:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        report['targets'] = {
            k: dict(met=bool(m), value=v)
            for k, (m, v) in report['targets'].items()
        }
        with open(out, 'w') as f:
            json.dump(report, f, indent=2)
        with open(osp.splitext(out)[0] + '.md', 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
