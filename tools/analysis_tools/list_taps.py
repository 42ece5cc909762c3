"""List the modules of a config's backbone that DKS branches can tap.

    python tools/analysis_tools/list_taps.py CONFIG [--probe-size S]
        [--depth N] [--cfg-options key=value ...]

Prints every module the backbone runs, in the order it finishes, with its
output shape and stride at the probe size, whether a branch may tap it,
and the stride-8 and stride-16 stage ends where the paper forks its
branches. CONFIG may be a plain recipe (``mmpretrain::resnet/...py``
works) or a DKS config.
"""
import argparse

from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmpretrain.registry import MODELS

import mmdks  # noqa: F401  registers mmdks backbones
from mmdks.models.utils import probe_backbone, stage_names, tap_candidates


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='a config with model.backbone, or mmpretrain::PATH')
    parser.add_argument(
        '--probe-size', type=int, default=None,
        help="input size (default: the backbone's own, else 224)")
    parser.add_argument(
        '--depth', type=int, default=None,
        help='show modules at most this many dots deep')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # `mmpretrain::recipe.py` names a config of an installed package.
    cfg = get_config(args.config) if '::' in args.config \
        else Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    backbone = MODELS.build(cfg.model.backbone)
    probe_size = args.probe_size or cfg.model.get('aux_neck', {}).get(
        'probe_size')
    probe = probe_backbone(backbone, probe_size)
    print(f'{type(backbone).__name__}, probed with a '
          f'{"x".join(map(str, probe.input_shape))} input; its output: '
          f'{probe.output_shapes}')
    stages = stage_names(backbone)
    print('from_stage counts: ' +
          (', '.join(f'{i}={n}' for i, n in enumerate(stages))
           if stages else 'no stage list (name taps)'))
    print(f'\n{"module":<40} {"output (per sample)":<28} {"stride":>6}  tap')
    for c in tap_candidates(backbone, probe):
        if args.depth is not None and c.name.count('.') > args.depth \
                and not c.stage_end:
            continue
        mark = 'yes' if c.usable else '-'
        if c.stage_end:
            mark += f'  <- end of the stride-{c.stage_end} stage'
        stride = '' if c.stride is None else c.stride
        print(f'{c.name:<40} {str(c.shape):<28} {stride:>6}  {mark}')


if __name__ == '__main__':
    main()
