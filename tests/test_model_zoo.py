"""The model zoo: the generated metafiles match the configs, and MMPretrain's
``list_models``/``get_model`` know the mmdks models once mmdks is
imported."""
import glob
import os.path as osp

import mmpretrain
import pytest
import yaml

import mmdks  # noqa: F401  registers the model index
from helpers import REPO_ROOT
from mmdks.analysis.metafile import (MODEL_INDEX, PAPER_ERRORS,
                                     PAPER_SOURCE, ZOO_DIRS, model_entry)
from mmdks.models import DKSClassifier


def metafile_models(rel_dir: str) -> list:
    with open(osp.join(REPO_ROOT, rel_dir, 'metafile.yml')) as f:
        return yaml.safe_load(f)['Models']


def all_models() -> list:
    return [m for d in ZOO_DIRS for m in metafile_models(d)]


def test_every_config_has_one_entry():
    with open(osp.join(REPO_ROOT, MODEL_INDEX)) as f:
        imports = yaml.safe_load(f)['Import']
    assert imports == [osp.join(d, 'metafile.yml') for d in ZOO_DIRS]
    for rel_dir in ZOO_DIRS:
        configs = sorted(
            osp.relpath(p, REPO_ROOT)
            for p in glob.glob(osp.join(REPO_ROOT, rel_dir, '*.py')))
        models = metafile_models(rel_dir)
        assert [m['Config'] for m in models] == configs, \
            f'{rel_dir}/metafile.yml is stale: run ' \
            'tools/misc/update_model_zoo.py'
        for model in models:
            assert model['Name'] == osp.splitext(
                osp.basename(model['Config']))[0]
            assert 'Weights' not in model  # nothing was trained here


def test_an_entry_matches_its_config():
    # The cheapest config; any change to the model code that changes the
    # counts shows here and needs the metafiles regenerated.
    config = osp.join(REPO_ROOT, 'configs', 'cifar100',
                      'dks_resnet32_1xb128_cifar100.py')
    entry = model_entry(config, REPO_ROOT, ZOO_DIRS['configs/cifar100'])
    committed = {m['Name']: m for m in metafile_models('configs/cifar100')}
    assert entry == committed['dks_resnet32_1xb128_cifar100'], \
        'run tools/misc/update_model_zoo.py'
    metadata = entry['Metadata']
    assert metadata['Training FLOPs'] > 2 * metadata['FLOPs']
    assert metadata['Training Data'] == 'CIFAR-100'
    assert metadata['Training Techniques'][-2:] == [
        'Deep Supervision', 'Knowledge Synergy'
    ]


def test_results_are_the_papers_and_marked_so():
    models = {m['Name']: m for m in all_models()}
    with_results = {n for n, m in models.items() if 'Results' in m}
    assert with_results == set(PAPER_ERRORS)
    for name in with_results:
        assert models[name]['Metadata']['Results From'] == PAPER_SOURCE
    # ResNet-50: the paper's 23.53 / 6.40 % top-1 / top-5 error.
    metrics = models['dks_resnet50_8xb32_in1k']['Results'][0]['Metrics']
    assert metrics == {'Top 1 Accuracy': 76.47, 'Top 5 Accuracy': 93.6}
    # Deep supervision alone is marked as such.
    assert 'Knowledge Synergy' not in models['ds_resnet18_8xb32_in1k'][
        'Metadata']['Training Techniques']


def test_mmpretrain_lists_and_builds_the_models():
    names = mmpretrain.list_models('dks*')
    assert 'dks_resnet50_8xb32_in1k' in names
    assert set(names) == {
        m['Name']
        for m in all_models() if m['Name'].startswith('dks')
    }
    # MMPretrain's own models are still there, next to ours.
    assert 'resnet50_8xb32_in1k' in mmpretrain.list_models('resnet50')
    model = mmpretrain.get_model('dks_resnet50_8xb32_in1k')
    assert isinstance(model, DKSClassifier)


def test_an_unknown_name_gets_mmpretrains_error():
    with pytest.raises(ValueError, match='Failed to find model "dks_nope"'):
        mmpretrain.get_model('dks_nope')
