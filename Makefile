# The two set-up commands (README): `make run` starts the gateway, `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The Codex CLI for tests/client/test_codex.py (the version those tests were written against).
CODEX_DIR := $(HOME)/.cache/rosetta/codex
CODEX_VERSION := 0.169.0

.PHONY: run test lint bench env local-model

$(STAMP): pyproject.toml
	@echo "[setup] creating $(VENV) and installing Rosetta with its test tools (about a minute)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --upgrade pip >$(VENV)/install.log 2>&1 && \
		$(VENV)/bin/pip install --progress-bar off -e '.[dev]' >>$(VENV)/install.log 2>&1 || \
		{ tail -30 $(VENV)/install.log >&2; echo "[setup] install failed (log: $(VENV)/install.log)" >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

env: $(STAMP)

local-model:
	@deploy/local-model.sh build

run: env
	@deploy/run-local.sh

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd bench && ../$(VENV)/bin/mypy --config-file ../pyproject.toml run.py loadgen.py fake_upstream.py

test: env local-model
	@command -v bun >/dev/null 2>&1 || npm install --global --silent bun >/dev/null 2>&1 || \
		echo "[setup] bun could not be installed: the compliance suite will be skipped"
	@test -x $(CODEX_DIR)/node_modules/.bin/codex || \
		npm install --prefix $(CODEX_DIR) --silent --no-audit --no-fund @openai/codex@$(CODEX_VERSION) >/dev/null 2>&1 || \
		echo "[setup] the Codex CLI could not be installed: tests/client/test_codex.py will be skipped"
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest

bench: env
	@command -v wrk >/dev/null 2>&1 || echo "[bench] wrk not found (apt-get install wrk): JSON load uses the asyncio client"
	$(PY) bench/run.py
