# Two entry points for a fresh machine: `make repro` (set up + run the whole DVC pipeline) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DVC_NO_ANALYTICS := 1

.PHONY: venv datasets repro test bench openmmlab clean-venv gpu-deps gpu-check readme

# Quiet install: pip's output goes to $(VENV)/install.log (its tail is shown on failure); then the fused C++
# reassembly, correlation and embedding ops are compiled (models/ops/build_ext.py, one line; the pure-PyTorch
# path runs if that fails).
$(STAMP): pyproject.toml constraints.txt models/ops/csrc/a2u_reassembly.cpp models/ops/csrc/a2u_correlation.cpp \
		models/ops/csrc/a2u_embedding.cpp
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the Python packages into $(VENV) (pip log: $(VENV)/install.log) ..."
	@start=$$(date +%s); \
	{ $(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip "setuptools>=77.0.3,<81" wheel && \
	  $(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'; } \
	  > $(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; \
	  echo "pip install failed; full log: $(VENV)/install.log"; exit 1; }; \
	echo "installed a2u-repro (editable) with torch $$($(PY) -c 'import torch; print(torch.__version__)') and \
	$$($(VENV)/bin/pip list --disable-pip-version-check --format=freeze 2>/dev/null | wc -l) packages in \
	$$(( $$(date +%s) - start )) s"
	@MAX_JOBS=$${MAX_JOBS:-1} nice -n 10 $(PY) -m models.ops.build_ext
	@touch $(STAMP)

venv: $(STAMP)

# Fashion-MNIST from Debian (offline IDX files); skipped with a note where apt-get or root is unavailable.
datasets:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y dataset-fashion-mnist >/dev/null 2>&1 || \
	  (apt-get update >/dev/null 2>&1 && apt-get install -y dataset-fashion-mnist >/dev/null 2>&1) || \
	  echo "note: could not install dataset-fashion-mnist; the toy stage will say where it looked"; \
	else echo "note: not root or no apt-get: install Fashion-MNIST with 'sudo apt-get install dataset-fashion-mnist'"; fi

# Stages run `python stages/...`: the venv's bin/ goes first on PATH so that is the venv's Python.
# params.yaml is checked whole first: DVC expands train@<variant>-<seed> from it before any stage runs.
repro: venv datasets
	@$(PY) -m pipeline.params_check params.yaml --remove-leftovers
	@start=$$(date +%s); PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro; rc=$$?; \
	echo "dvc repro finished in $$(( $$(date +%s) - start )) s (exit $$rc); report: results/report.html"; exit $$rc

test: venv datasets
	$(PY) -m pytest

bench: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro bench

# Full mmcv 2.1.0 with compiled ops + mmseg 1.2.2 + mmdet 3.3.0 into $(VENV), for tests/test_openmmlab.
# mmcv is built from source once (about 20 min on 2 cores) into $(MMCV_WHEELS); later installs reuse that
# wheel and take seconds. mmcv-lite is uninstalled first (both own the same mmcv/ directory); mmcv is
# force-reinstalled because a stale mmcv-lite reinstall may have overwritten its files. `make venv` (run by
# `make test` after pyproject.toml changes) puts mmcv-lite back: run `make openmmlab` again after it.
# Also: `make openmmlab VENV=.venv-mm`.
MMCV_WHEELS ?= $(HOME)/.cache/a2u-wheels
OPENMMLAB_PKGS := mmsegmentation==1.2.2 mmdet==3.3.0 ftfy regex prettytable shapely terminaltables pycocotools
openmmlab: venv
	$(VENV)/bin/pip install "setuptools>=77.0.3,<81" wheel ninja
	@mkdir -p $(MMCV_WHEELS)
	@if ls $(MMCV_WHEELS)/mmcv-2.1.0-*.whl >/dev/null 2>&1; then echo "using cached $$(ls $(MMCV_WHEELS)/mmcv-2.1.0-*.whl)"; \
	else echo "building mmcv 2.1.0 with ops from source into $(MMCV_WHEELS) (about 20 min on 2 cores)"; \
	  start=$$(date +%s); \
	  MMCV_WITH_OPS=1 MAX_JOBS=$${MAX_JOBS:-2} nice -n 10 $(VENV)/bin/pip wheel --no-build-isolation --no-deps \
	    mmcv==2.1.0 -w $(MMCV_WHEELS) || exit 1; \
	  echo "mmcv wheel built in $$(( $$(date +%s) - start )) s"; fi
	$(VENV)/bin/pip uninstall -y mmcv-lite
	$(VENV)/bin/pip install --no-deps --force-reinstall $$(ls $(MMCV_WHEELS)/mmcv-2.1.0-*.whl | head -n 1)
	$(VENV)/bin/pip install --find-links $(MMCV_WHEELS) mmcv==2.1.0 $(OPENMMLAB_PKGS)
	$(PY) -c "import mmcv, mmcv.ops, mmseg, mmseg.models, mmdet, mmdet.models; \
	print('openmmlab ok: mmcv', mmcv.__version__, '(ops), mmseg', mmseg.__version__, ', mmdet', mmdet.__version__)"

# GPU readiness check (tools/gpu_check.py, < 7 min on one GPU): needs only a CUDA PyTorch (+ numpy, opencv) and
# these pure-Python wheels, installed into $(GPU_DEPS) by `make gpu-deps` (here, where PyPI is reachable; no
# compiled code, so the folder works on the GPU machine's Python 3.12). There: `make gpu-check OUT=<folder>`.
GPU_DEPS ?= .gpu-deps
GPU_PYTHON ?= python3
GPU_WHEELS := mmengine==0.10.7 mmcv-lite==2.1.0 addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0
OUT ?= gpu_check_out
gpu-deps: venv
	$(PY) -m pip install --no-deps --target $(GPU_DEPS) $(GPU_WHEELS)

gpu-check:
	PYTHONPATH="$(GPU_DEPS):$(CURDIR)" $(GPU_PYTHON) tools/gpu_check.py $(OUT) $(GPU_CHECK_ARGS)

# The README's results section from the committed results/ (after `make repro`); a test checks it is current.
readme: venv
	$(PY) -m pipeline.report.readme README.md
