# Two entry points a new user needs: `make demo` and `make test`.
# Both create the virtualenv in .venv on first use; nothing is installed system-wide.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dispatcher demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check dispatcher tests bench
	$(BIN)/ruff format --check dispatcher tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/worker_drain.py --appeals 1000

clean:
	rm -rf $(VENV) var
