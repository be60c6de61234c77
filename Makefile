# Two commands from a fresh clone: `make run` (the bot; the terminal chat when BOT_TOKEN is unset)
# and `make test`. Both create the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast chat bench lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/posbot run

chat: $(BIN)/.installed
	$(BIN)/posbot chat

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The unit tier for the inner loop: no PostgreSQL, no fake Bot API server, no child process, nothing slow.
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m "not postgres and not e2e and not slow" $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check bot tests benchmarks
