"""run_provenance: the commit of the source tree and MMPretrain's view of the
environment, ready for a JSON report."""
import json
import re

import mmengine
import mmpretrain
import torch

from helpers import REPO_ROOT
from mmdks.analysis import run_provenance


def test_commit_and_environment(tmp_path, monkeypatch):
    # collect_env would append the hash of the current directory's
    # repository to MMPretrain's version; run from this one to check not.
    monkeypatch.chdir(REPO_ROOT)
    provenance = json.loads(json.dumps(run_provenance(REPO_ROOT)))
    assert re.fullmatch('[0-9a-f]{40}', provenance['commit'])
    assert isinstance(provenance['dirty'], bool)
    env = provenance['env']
    assert env['MMPreTrain'] == mmpretrain.__version__
    assert env['MMEngine'] == mmengine.__version__
    assert env['PyTorch'] == torch.__version__
    assert {'Python', 'MMCV', 'TorchVision', 'CUDA available'} <= set(env)
    assert run_provenance(str(tmp_path))['commit'] == 'unknown'
