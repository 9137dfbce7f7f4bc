# interp-widget: the two commands a newcomer types are `make report` and `make test`.
# Everything installs into ./.venv; torch is pinned and installed FIRST so that no
# dependency pulls a CUDA build of torch.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TORCH  ?= torch==2.13.0
REPORT ?= report.html
PYTEST_ARGS ?=

.PHONY: help install install-test system-deps js report test test-py test-js typecheck lint bench clean

help:
	@echo "make report   install and write $(REPORT) for the default model (induction-2l)"
	@echo "make test     install everything (Python, npm, Chromium) and run every test"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	touch $@

# user install: builds the front ends once (npm) and installs the package
install: $(VENV)/.torch
	$(BIN)/pip install -q .

report: install
	$(BIN)/interp-widget report -o $(REPORT)
	@echo "open $(REPORT) in a browser (it works offline)"

# developer / test install
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

js: node_modules/.package-lock.json
	npm run build

install-test: $(VENV)/.torch js
	$(BIN)/pip install -q -e ".[test,ndif-server]"
	$(BIN)/pip install -q --no-deps --ignore-requires-python ndif==0.1.2  # the NDIF server for tests/test_remote_ndif.py (declares Python >= 3.12; its files run on 3.11)

system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian's redis-server for the NDIF tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

typecheck: js
	npm run typecheck

test-js: js
	npm test

test-py: install-test system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: install-test system-deps typecheck test-js test-py

lint:
	$(BIN)/ruff check interp_widget tests benchmarks scripts

bench: install-test system-deps
	$(BIN)/python benchmarks/attention_payload.py
	$(BIN)/python benchmarks/patching.py
	$(BIN)/python benchmarks/remote.py

clean:
	rm -rf $(VENV) node_modules labextension/node_modules interp_widget/labextension interp_widget/widgets/static/*.js dist build
