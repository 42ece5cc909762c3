import functools
import http.server
import os
import threading

import pytest
import torch

# Triton chooses its interpreter once, when it is imported: without a GPU,
# choose it before any test imports Triton, so that the fused synergy
# loss's kernels run on CPU tensors (tests/test_fused_synergy.py). Nothing
# else here runs Triton on the CPU.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

# Fixtures only; test modules import their helpers from helpers.py.
from helpers import make_imagenet_folder  # noqa: E402


@pytest.fixture(scope='session')
def imagenet_folder(tmp_path_factory) -> str:
    return make_imagenet_folder(str(tmp_path_factory.mktemp('imagenet')))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope='session')
def http_root(tmp_path_factory):
    """``(folder, url)``: ``folder`` served at ``url`` by an HTTP server on
    127.0.0.1 only, in a thread of this process."""
    folder = str(tmp_path_factory.mktemp('served'))
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler,
                                            directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    thread.join()
