# ganinv: every target creates or reuses .venv itself.
PY_SYS ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch is not pinned in pyproject.toml (bring your own CUDA build); these pins are the tested pair.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo study test test-all test-gpu gpu-check lint bench toy-assets

# facenet-pytorch (MTCNN, for metrics=faces_papers) pins torch<2.3 in its metadata, so no extra can require it;
# it is installed without its pins: its MTCNN runs on this torch (docs/photos.md).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev]' $(TORCH_PINS)
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	$(PY) -m pip uninstall -q -y hydra-optuna-sweeper  # an older venv's plugin (optuna<3), replaced by ganinv's
	touch $@

install: $(VENV)/.installed

# The whole pipeline on the embedded toy domain, offline, into demo/ (on two CPU cores: 11-12 minutes with AVX512,
# 22 on an AMD EPYC without it, where training takes 16 and the optimisers 6; plus the install).
demo: install
	$(PY) -m ganinv.commands.demo demo

# The toy distortion-vs-editability study: train every encoder recipe over 3 seeds, evaluate every method on
# held-out renders and generator samples, write the tables, plots and findings (about 4½ hours on two CPU cores).
STUDY := experiments/reproductions/toy_tradeoff
study: install
	$(PY) $(STUDY)/train.py
	$(PY) $(STUDY)/evaluate.py
	$(PY) $(STUDY)/report.py

# Test files run in parallel, one process per core (pytest-xdist; a file's tests stay in one process, so its
# fixtures are made once): TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-all: install
	$(PY) -m pytest -q -m '' -n $(TEST_WORKERS) --dist loadfile

test-gpu: install
	$(PY) -m pytest -q -m gpu tests/gpu

# On a lent GPU: the CUDA tests, then every method's training images/s (fp32, bf16, bf16 + channels_last, compile),
# peak memory, batch-1 latency and the optimisers' seconds per image at full size with random weights, stopping
# before budget_s; writes $(OUT)/gpu-report.json and .md (docs/scaling.md#a-first-gpu). On a CPU: the toy size.
# GPU_CHECK: more options of conf/gpu_check.yaml, e.g. GPU_CHECK="methods=[psp,e4e] options=[fp32,bf16]".
OUT ?= gpu-report
budget_s ?= 420
GPU_CHECK ?=
gpu-check: install
	$(PY) -m ganinv.commands.gpu_check out=$(OUT) budget_s=$(budget_s) $(GPU_CHECK)

lint: install
	$(VENV)/bin/ruff check ganinv tests experiments hydra_plugins

bench: install
	$(PY) experiments/benchmarks/generator.py
	$(PY) experiments/benchmarks/encoders.py
	$(PY) experiments/benchmarks/data.py

# Retrain the committed toy nets and toy StyleGAN2 from scratch (hours on CPU; minutes on a GPU).
toy-assets: install
	$(PY) -m ganinv.toy.make_assets
