# Two commands on a fresh machine with Python 3.11+ and make: `make preview` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
STAMP := $(VENV)/.installed

# The tests run on this many pytest-xdist workers; --dist loadgroup keeps a group (xdist_group: one Spark, one
# PostgreSQL) on one worker.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup

.PHONY: install preview test lint lint-fast clean bench coverage durations

install: $(STAMP)

# Reinstalls only when a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt wheel/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# The jobs' wheel, editable (its src/ on sys.path): its tests and the mlflow-eval console script.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e ./wheel
	@touch $(STAMP)

# Render a stack offline (no Pulumi CLI, workspace or credentials): make preview STACK=prod
preview: install
	$(BIN)/python -m infra preview --stack $(STACK)

# Lint without the type check (ruff, ruff format, the GitHub workflows with actionlint and ShellCheck from .venv).
lint-fast: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/actionlint

lint: lint-fast
	$(BIN)/mypy

# Lint, then the tests with mypy beside them (a cold mypy takes about 12 s of one core): its report is printed
# after the tests', and either failing fails `make test`.
test: lint-fast
	@out=$$(mktemp); $(BIN)/mypy >"$$out" 2>&1 & mypy=$$!; \
	$(BIN)/pytest $(PYTEST_PARALLEL); tests=$$?; \
	wait $$mypy; types=$$?; echo "mypy:"; cat "$$out"; rm -f "$$out"; \
	test $$tests -eq 0 && test $$types -eq 0

# Rewrite tests/durations.json from a passing run: how long each slow test takes, which the xdist scheduler
# (conftest.py) reads to hand out the longest work first. Worth rerunning when tests are added or get slower.
durations: install
	$(BIN)/pytest $(PYTEST_PARALLEL) --record-durations

# The wall time of `make test` and of a bare `python -c "import pulumi_databricks"`, and their ratio.
bench: install
	$(BIN)/python bench/suite.py

# Line coverage of infra/, wheel/src and policy/ by the whole suite, subprocesses included; prints the total.
coverage: install
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_PARALLEL)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report | tail -1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .wheel-cache .coverage .coverage.*

# The serving app's benchmark (seed 001): the app under uvicorn, stand-ins of the serving endpoints (the LLM a
# fixed 20 ms), a real PostgreSQL with pgvector; req/s and p50/p99 of POST /api/execute at 1, 10, 50 clients.
.PHONY: bench-app
bench-app: install
	$(BIN)/python wheel/bench/bench_app.py
