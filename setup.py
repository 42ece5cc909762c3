"""Install mmdks; configs, tools and the model index go inside the package
as ``mmdks/.mim`` so that ``mim train/test/run/search mmdks ...`` find
them."""
import os
import os.path as osp
import re
import shutil

from setuptools import find_packages, setup

MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Copy (or, for ``setup.py develop``, symlink) configs, tools and the
    model index into ``mmdks/.mim``.

    A wheel build (what ``pip install .`` runs) copies; MANIFEST.in puts the
    copies into the wheel. ``pip install -e .`` with setuptools >= 64 runs
    neither mode, which is why the README installs with ``pip install .``.
    """
    import sys
    if 'develop' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    mim_dir = osp.join(root, 'mmdks', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(root, name), osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isfile(src):
            shutil.copyfile(src, dst)
        else:
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))


def get_version() -> str:
    scope: dict = {}
    with open(osp.join('mmdks', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(path: str) -> list:
    with open(path) as f:
        return [
            line.split('#')[0].strip() for line in f
            if line.split('#')[0].strip() and not line.startswith('-')
        ]


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdks',
        version=get_version(),
        description='Deeply-supervised Knowledge Synergy (DKS) for '
        'MMPretrain: train any classifier with DKS from a config, deploy '
        'it head-free',
        long_description=open('README.md', encoding='utf-8').read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        license_files=['LICENSE'],
        python_requires='>=3.8',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        # No mmcv: over a full mmcv, mmcv-lite would delete its compiled
        # ops. Install one yourself (requirements/mminstall.txt), or the
        # `lite` extra where there is none.
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require=dict(
            lite=[
                req.replace('mmcv', 'mmcv-lite', 1)
                for req in parse_requirements('requirements/mminstall.txt')
            ],
            # One extra per optional package: `.[tensorboard]`, `.[timm]`.
            **{
                re.split('[<>=!~;]', req)[0].strip(): [req]
                for req in parse_requirements('requirements/optional.txt')
            },
            tests=parse_requirements('requirements/tests.txt')),
        zip_safe=False)
