"""Make the mmdks model zoo part of MMPretrain's: once mmdks is imported,
``mmpretrain.list_models('dks*')`` lists its configs and
``mmpretrain.get_model(name)`` builds them."""
import os.path as osp
from typing import Optional, Tuple

MODEL_INDEX = 'model-index.yml'


def model_index_path() -> Optional[Tuple[str, str]]:
    """Where mmdks's ``model-index.yml`` is, and the folder its config paths
    are relative to.

    A source checkout (mmdks imported from the repository) uses its own
    files: a ``mmdks/.mim`` left there by an earlier build may be stale. An
    installed package uses its ``.mim``, where ``pip install .`` copies
    them.

    Returns:
        tuple[str, str] | None: ``(model-index path, config root)``, or
        None where there is neither (an install without the ``.mim``
        files).
    """
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    checkout = osp.dirname(package)
    roots = [osp.join(package, '.mim')]
    if osp.isfile(osp.join(checkout, 'setup.py')):
        roots.insert(0, checkout)
    for root in roots:
        if osp.isfile(osp.join(root, MODEL_INDEX)):
            return osp.join(root, MODEL_INDEX), root
    return None


def register_model_index() -> None:
    """Register mmdks's models with MMPretrain's ``ModelHub`` (once per
    process: ``ModelHub`` refuses a name twice)."""
    from mmpretrain.apis import ModelHub
    found = model_index_path()
    if found is not None:
        ModelHub.register_model_index(found[0], config_prefix=found[1])
