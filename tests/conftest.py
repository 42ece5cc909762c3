import pytest

# Test modules import shared helpers from here or from helpers.py.
from helpers import (CONFIG_DIR, REPO_ROOT,  # noqa: F401
                     load_study, make_imagenet_folder, mmpretrain_config)


@pytest.fixture(scope='session')
def imagenet_folder(tmp_path_factory) -> str:
    return make_imagenet_folder(str(tmp_path_factory.mktemp('imagenet')))
