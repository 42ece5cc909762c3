PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# torch and torchvision for a machine without them (on this project's CI
# machines both come from local disk); pick the build for your CUDA on a GPU
# machine, or install yours first: a working one is kept.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# mmcv-lite only where no `mmcv` is importable: it ships the same package
# minus the compiled ops, so over a full mmcv it would break MMDetection
# and others. An installed mmcv, of any kind, is left as it is.
MMCV_EXTRA = $(shell $(PYTHON) -c 'import importlib.util as u; \
	print("" if u.find_spec("mmcv") else "[lite]")')

.PHONY: torch install test test-slow

# torch only when it does not import; torchvision only when it does not
# import with that torch, and then the one built for it.
torch:
	@if ! $(PYTHON) -c 'import torch' 2>/dev/null; then \
		$(PIP) install $(TORCH); \
	elif ! $(PYTHON) -c 'import torchvision' 2>/dev/null; then \
		$(PIP) install torchvision "torch==$$($(PYTHON) -c \
			'import torch; print(torch.__version__.split("+")[0])')"; \
	fi

# mmdks with mmpretrain 1.2.0, mmengine and openmim, and the test tools. A
# plain `pip install .` (not -e): only a wheel build puts configs, tools
# and the model index into mmdks/.mim, where mim looks for them.
install: torch
	$(PIP) install -r requirements/tests.txt ".$(MMCV_EXTRA)"

# The default suite (CPU, a few minutes).
test: install
	$(PYTHON) -m pytest tests

# Slow runs (real data, torch.compile), on purpose only.
test-slow: install
	$(PYTHON) -m pytest tests -m slow
