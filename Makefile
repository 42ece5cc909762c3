PYTHON ?= python3
# torch and torchvision that import together (on this project's CI machines
# both come from local disk); pick the build for your CUDA on a GPU machine.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-slow

# mmdks with mmpretrain 1.2.0, mmengine, mmcv-lite and openmim. A plain
# `pip install .` (not -e): only a wheel build puts configs and tools into
# mmdks/.mim, where `mim train/test/run mmdks` look for them.
install:
	$(PYTHON) -m pip install $(TORCH)
	$(PYTHON) -m pip install -r requirements/tests.txt .

# The default suite (CPU, a few minutes).
test: install
	$(PYTHON) -m pytest tests

# Slow runs (real data, torch.compile), on purpose only.
test-slow: install
	$(PYTHON) -m pytest tests -m slow
