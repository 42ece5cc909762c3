"""Installing mmdks leaves the user's environment alone: ``pip install .``
requires no mmcv-lite, ``make install`` adds torch, torchvision and
mmcv-lite only where they are missing, and ``import mmdks`` says in one
line what to install when a library is missing or unsupported."""
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
import venv
import zipfile

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.version import Version

import mmdks
from helpers import REPO_ROOT
from mmdks.utils.dependency import VERSIONS, check_dependencies


def write_modules(root, modules: dict) -> str:
    """Stand-in packages: ``{name: source of its __init__.py}``."""
    for name, source in modules.items():
        (root / name).mkdir()
        (root / name / '__init__.py').write_text(source)
    return str(root)


def make_install(pythonpath: str) -> list:
    """The commands ``make install`` would run, with only ``pythonpath`` on
    the path of its Python (no site-packages) and pip replaced by echo."""
    result = subprocess.run(
        ['make', '-s', 'install', f'PYTHON={sys.executable} -S',
         'PIP=echo pip'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=pythonpath))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


TORCH = "__version__ = '2.3.0+cu121'"
BROKEN_TORCHVISION = "raise RuntimeError('operator torchvision::nms does " \
    "not exist')"


def test_make_install_keeps_a_working_torch_and_mmcv(tmp_path):
    path = write_modules(tmp_path, dict(torch=TORCH, torchvision='',
                                        mmcv=''))
    assert make_install(path) == ['pip install -r requirements/tests.txt .']


@pytest.mark.parametrize('torchvision', [None, BROKEN_TORCHVISION])
def test_make_install_matches_torchvision_to_the_torch(tmp_path,
                                                       torchvision):
    modules = dict(torch=TORCH)
    if torchvision is not None:
        modules['torchvision'] = torchvision
    assert make_install(write_modules(tmp_path, modules)) == [
        'pip install torchvision torch==2.3.0',
        'pip install -r requirements/tests.txt .[lite]'
    ]


def test_make_install_installs_torch_where_there_is_none(tmp_path):
    assert make_install(str(tmp_path)) == [
        'pip install torch==2.14.1 torchvision==0.29.1',
        'pip install -r requirements/tests.txt .[lite]'
    ]


def stub_wheel(out_dir, name: str, version: str,
               metadata: str = '') -> None:
    """A wheel without files that declares ``name==version`` (and the rest
    of ``metadata``, a METADATA file's text, if given)."""
    dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    info = f'{dist}.dist-info'
    files = {
        f'{info}/METADATA':
        metadata or f'Metadata-Version: 2.1\nName: {name}\nVersion: '
        f'{version}\n',
        f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: mmdks-tests\n'
        'Root-Is-Purelib: true\nTag: py3-none-any\n',
    }
    with zipfile.ZipFile(out_dir / f'{dist}-py3-none-any.whl', 'w') as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(f'{info}/RECORD',
                   ''.join(f'{p},,\n' for p in [*files, f'{info}/RECORD']))


def run(cmd: list, **kwargs) -> None:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f'{cmd} failed:\n{result.stderr[-3000:]}'


def test_pip_install_adds_no_mmcv_lite_to_an_installed_mmcv(tmp_path):
    # mmdks's metadata as pip gets it from setup.py (the PEP 517 hook),
    # stand-ins for its requirements at the versions installed here, and
    # an empty venv: pip resolves `pip install .` offline and fast.
    if Version(setuptools.__version__) < Version('70.1') and \
            importlib.util.find_spec('wheel') is None:
        pytest.skip('setuptools < 70.1 builds metadata only with wheel')
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    run([sys.executable, '-c', 'import sys; from setuptools import '
         'build_meta; print(build_meta.prepare_metadata_for_build_wheel('
         'sys.argv[1]))', str(tmp_path)], cwd=REPO_ROOT)
    metadata = (tmp_path / f'mmdks-{mmdks.__version__}.dist-info' /
                'METADATA').read_text()
    stub_wheel(wheels, 'mmdks', mmdks.__version__, metadata)
    for line in metadata.splitlines():
        if line.startswith('Requires-Dist:') and 'extra ==' not in line:
            name = Requirement(line.split(':', 1)[1]).name
            stub_wheel(wheels, name, importlib.metadata.version(name))
    stub_wheel(wheels, 'mmcv', '2.1.0')
    stub_wheel(wheels, 'mmcv-lite', '2.2.0')
    env_dir = tmp_path / 'venv'
    venv.create(env_dir)  # pip below runs for it (--python)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PIP_', 'PYTHON'))}
    env['PIP_CONFIG_FILE'] = os.devnull  # no machine-wide index or limits
    pip = [sys.executable, '-m', 'pip', '--python',
           str(env_dir / 'bin' / 'python'), 'install', '--no-index',
           '--find-links', str(wheels)]

    def would_install(requirement: str) -> set:
        report = tmp_path / 'report.json'
        run(pip + ['--dry-run', '--report', str(report), requirement],
            env=env)
        with open(report) as f:
            return {i['metadata']['name'] for i in json.load(f)['install']}

    # Without an mmcv, the `lite` extra brings mmcv-lite: the report sees it.
    assert {'mmdks', 'mmcv-lite'} <= would_install('mmdks[lite]')
    run(pip + ['mmcv==2.1.0'], env=env)
    added = would_install('mmdks')
    assert 'mmdks' in added
    assert not {'mmcv', 'mmcv-lite'} & added


def test_version_checks_match_the_requirements():
    requirements = {}
    for name in ('runtime.txt', 'mminstall.txt'):
        with open(os.path.join(REPO_ROOT, 'requirements', name)) as f:
            for line in f:
                if line.strip() and not line.startswith('#'):
                    req = Requirement(line)
                    requirements[req.name] = req.specifier
    for name, (low, high) in VERSIONS.items():
        assert low in requirements[name], name
        assert high not in requirements[name], name


@pytest.mark.parametrize('version', ['1.7.2', '2.4.0'])
def test_an_unsupported_mmcv_gets_one_line(monkeypatch, version):
    monkeypatch.setitem(sys.modules, 'mmcv',
                        types.SimpleNamespace(__version__=version))
    with pytest.raises(ImportError) as error:
        check_dependencies()
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith(
        f'mmdks needs mmcv>=2.0.0,<2.4.0, found {version}: run `mim install')
    assert 'mmcv-lite>=2.0.0,<2.4.0' in message


def test_an_unsupported_mmengine_gets_one_line():
    with pytest.raises(ImportError, match=r'mmdks needs mmengine>=0\.1,<0\.2'
                       r', found \S+: run `pip install "mmengine>=0\.1,<0'):
        check_dependencies({'mmengine': ('0.1', '0.2')})


def test_import_without_mmcv_names_the_install_command():
    # mmdks imported as in a fresh environment where no mmcv is installed.
    result = subprocess.run(
        [sys.executable, '-c',
         "import sys; sys.modules['mmcv'] = None; import mmdks"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1] == (
        'ImportError: mmdks needs mmcv>=2.0.0,<2.4.0, which is not '
        'installed: run `mim install "mmcv>=2.0.0,<2.4.0"` (full mmcv, with '
        'the compiled ops other OpenMMLab libraries need) or `pip install '
        '"mmcv-lite>=2.0.0,<2.4.0"` (enough for mmdks)')
