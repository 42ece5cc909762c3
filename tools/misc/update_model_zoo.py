"""Regenerate the model zoo: ``configs/**/metafile.yml`` and
``model-index.yml``, with FLOPs and parameters measured from the configs.

    PYTHONPATH=. python tools/misc/update_model_zoo.py

(``PYTHONPATH=.``: measure this checkout, not an installed mmdks.) Rerun
it after adding, removing or changing a config; it takes a few
minutes on a CPU.
"""
import os.path as osp

from mmdks.analysis.metafile import write_model_zoo

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main() -> None:
    for metafile, names in write_model_zoo(ROOT).items():
        print(f'{metafile}: {len(names)} models')


if __name__ == '__main__':
    main()
