# The README's two commands are `make run` and `make test`; both install what they need first.
# Settings come from the environment, and make passes its command-line variables into it:
#   make run PORT=8080 HOST=0.0.0.0 DATABASE_URL=postgres://postgres@127.0.0.1:5432/plugboard
#   make cli ARGS="tokens list you@example.com"     (the same as .venv/bin/python -m app tokens list …)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FRONTEND_STAMP := frontend/dist/.built

# Python writes its bytecode caches here even where the environment says not to (this machine
# sets PYTHONDONTWRITEBYTECODE): the suite starts hundreds of `python -m app` processes, and each
# compiled app/ from source again, as each xdist worker did the tests.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run cli lint test migrate schema readme bench clean

install: $(STAMP) $(FRONTEND_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

FRONTEND_SOURCES := $(wildcard frontend/package.json frontend/package-lock.json frontend/vite.config.js) \
	$(shell find frontend/graphiql frontend/src frontend/sign-in frontend/plugins frontend/my-plugins frontend/public -type f 2>/dev/null)

$(FRONTEND_STAMP): $(FRONTEND_SOURCES)
	@if [ -f frontend/package.json ]; then \
		cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build && touch dist/.built; \
	fi

run: install
	$(PY) -m app serve

cli: install
	$(PY) -m app $(or $(ARGS),--help)

# ruff's formatter and linter (pyflakes, bugbear, import order, ...) and mypy; settings in pyproject.toml.
lint: install
	$(PY) -m ruff format --check app tests bench
	$(PY) -m ruff check app tests bench migrations
	$(PY) -m mypy

# The suite in TEST_WORKERS processes (pytest-xdist): its tests wait on databases, sockets and
# subprocesses, so more workers than cores. On 2 cores, 4 left them idle a fifth of the run and 6 a
# twentieth (docs/benchmarks.md). Each worker takes the next test as it is free (--dist loadgroup,
# without groups), so the slow tests spread out as tests/conftest.py orders them.
TEST_WORKERS ?= 6
test: install lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

migrate: install
	$(PY) -m app migrate

schema: install
	$(PY) -m app export-schema > schema/schema.graphql

# The README's configuration table, from the settings' declarations (app/settings.py).
readme: install
	$(PY) -m app.settings_doc --write

# Every benchmark in bench/ (bench/__main__.py); e.g. make bench ARGS="--only processing"
bench: install
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist
