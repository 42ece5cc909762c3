"""The README's demo end to end on real Fashion-MNIST (slow: run with
``make test-slow``)."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from helpers import REPO_ROOT


@pytest.mark.slow
def test_demo_runs_and_the_stripped_model_matches_main(tmp_path):
    result = subprocess.run(
        ['bash', osp.join(REPO_ROOT, 'tools', 'demo.sh'), '--work-dir',
         str(tmp_path), '--train-size', '2000', '--epochs', '2'],
        capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, \
        result.stdout[-3000:] + result.stderr[-3000:]
    table = dict(re.findall(r'\| (\S[^|]*?) \| ([0-9.]+) \|', result.stdout))
    assert table['stripped (vanilla MMPretrain)'] == table['main']
    assert {'branch_1', 'branch_2', 'ensemble'} <= set(table)
    # 2 epochs of 2k images, still in the learning-rate warm-up: measured
    # 33.07 (c5df216) and 33.06 (now) with randomness.seed=0, 32.29 unseeded.
    # Twice chance (10%) separates learning from none.
    assert float(table['main']) > 20
    assert osp.isfile(tmp_path / 'curves.png')


def test_an_earlier_demo_is_kept_unless_forced(tmp_path):
    (tmp_path / 'curves.png').write_text('mine')
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', 'demo.py'),
         '--work-dir', str(tmp_path)], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT), timeout=120)
    assert result.returncode == 2 and '--force' in result.stderr
    assert os.listdir(tmp_path) == ['curves.png']
