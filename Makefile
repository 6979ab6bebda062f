# Two commands on a fresh machine:
#   make demo   set up, then run the main job end to end on the embedded synthetic data
#               (synthetic provider export → encrypted ingest → DP releases → dashboards)
#   make test   set up, then run the whole test suite
# Also: make test-fast (the fast tier, about 3 min), make lint (ruff + mypy), make dev (Dagster UI),
# make test-deploy (deploy/ files and the Postgres-backed parallel-runs test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast test-deploy lint dev bench clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/wellbeing demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The fast tier: every package, no slow / browser / statistical test, on both cores; prints its duration.
test-fast: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/python -m pytest -m "not slow and not browser and not dp_statistical" -q -n 2; status=$$?; \
	echo "fast tier: $$(( $$(date +%s) - start )) s"; exit $$status

# The deployment: deploy/ files checked offline, and runs on a Postgres-backed instance with the
# daemon (needs Debian's postgresql package; .ci/run installs it). See docs/deployment.md.
test-deploy: $(STAMP)
	$(BIN)/python -m pytest tests/deploy -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The Dagster UI on the demo's data folder (dg reads [tool.dg] in pyproject.toml).
dev: $(STAMP)
	WELLBEING_HOME=$(CURDIR)/.wellbeing $(BIN)/python -c "from pipeline.instance import ensure_dagster_home; from pipeline.settings import Settings; ensure_dagster_home(Settings.from_env())"
	DAGSTER_HOME=$(CURDIR)/.wellbeing/dagster WELLBEING_HOME=$(CURDIR)/.wellbeing $(BIN)/dg dev -h 127.0.0.1

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_release.py
	$(BIN)/python benchmarks/bench_dashboards.py

clean-demo:
	rm -rf .wellbeing
