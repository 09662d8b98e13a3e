# Two entry points for a fresh machine: `make repro` (set up + run the whole DVC pipeline) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DVC_NO_ANALYTICS := 1

.PHONY: venv datasets repro test bench openmmlab clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip "setuptools>=77.0.3,<81" wheel
	$(VENV)/bin/pip install -e '.[test]'
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

repro: venv datasets
	@start=$$(date +%s); $(VENV)/bin/dvc repro; rc=$$?; \
	echo "dvc repro finished in $$(( $$(date +%s) - start )) s (exit $$rc); report: results/report.html"; exit $$rc

test: venv datasets
	$(PY) -m pytest

bench: venv
	$(VENV)/bin/dvc repro bench
