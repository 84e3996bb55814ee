# Orion: `make up` starts everything on this machine; `make test` runs every test against the
# real services. Both install what is missing first and are idempotent.

PYTHON ?= python3
VENV   := .venv
ORION  := $(VENV)/bin/orion

.PHONY: up down test lint install system-deps venv clean

up: install
	$(ORION) up

down:
	@if [ -x $(ORION) ]; then $(ORION) down; else echo "nothing to stop (no $(VENV))"; fi

test: install lint
	$(ORION) infra up
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check orion tests load
	$(VENV)/bin/ruff format --check orion tests load
	$(VENV)/bin/mypy

install: system-deps venv

system-deps:
	@scripts/install-system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "orion: Python >= 3.11 is required (found " + sys.version.split()[0] + ")")'
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

clean: down
	rm -rf $(VENV)
