# fyp: `make run` serves the demo world on http://127.0.0.1:8000, `make test` runs the suite.
# The interpreter of .venv: the CPython 3.11 on PATH that serves a feed fastest (one with its C
# headers and libpython linked in, see scripts/pick_python.py); `make PYTHON=...` chooses.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell python3 scripts/pick_python.py 2>/dev/null || command -v python3.11 || command -v python3)
endif
VENV := .venv
BIN := $(VENV)/bin
# .venv is rebuilt when the dependencies or the interpreter change
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo '$(PYTHON)') | cksum | cut -d' ' -f1)

.PHONY: install run test lint bench clean chromium screenshots

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "fyp needs Python 3.11"'
	@echo "building $(VENV) on $(PYTHON)"
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# A simulated audience of $(SIMULATE) users keeps the demo world busy while it is served
# (feeds and events through the API, one summary line per simulated day); SIMULATE=0: off.
SIMULATE ?= 50

# `fyp compile` builds the feed's hot modules with mypyc (about a minute; `fyp serve` runs the
# plain modules when it cannot, e.g. without a C compiler).
run: install
	$(BIN)/fyp demo
	$(BIN)/fyp train
	$(BIN)/fyp compile || echo "fyp compile failed: serving the plain modules"
	$(BIN)/fyp serve --simulate $(SIMULATE)

test: install chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# -- simulator -- `make run` already keeps a live audience on the demo world; this runs a batch
# simulation against that server (start it first) and prints its per-day summary: 200 users
# for one simulated day, over the simulator's own catalog, which --setup loads first.
.PHONY: simulate
simulate: install
	$(BIN)/fyp simulate --users 200 --days 1 --setup

# -- web -- the browser tests and screenshots drive Debian's chromium (installed when missing)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

screenshots: install chromium
	$(BIN)/python scripts/screenshots.py --out docs/screenshots
