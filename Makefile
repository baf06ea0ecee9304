# Nova: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
NOVA := $(VENV)/bin/nova
PYTHON ?= python3
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv and install Nova with its dev tools

kafka-jars: install ## fetch the Apache Kafka broker jars with mvn (cached outside the repo)
	$(NOVA) kafka fetch

demo: kafka-jars ## run the whole stack on embedded defaults, submit a scripted batch, print the report
	$(NOVA) demo

browser: ## install Debian's chromium (the console's browser tests drive it) when it is missing
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

test: kafka-jars browser ## run every test (unit, then integration on a real broker, embedded ClickHouse and chromium)
	$(PY) -m pytest tests/unit -q -n 2  # the unit tests share nothing: two processes halve their time
	$(PY) -m pytest tests/integration -q -n 2 --dist loadscope --no-loadscope-reorder --durations=15  # two processes, each with its own broker (most waits are I/O); a module stays in one, so a stack it shares is started once; the longest modules first (tests/integration/conftest.py)

lint: install ## ruff, and mypy: strict on application code, relaxed on tests and benchmarks
	$(VENV)/bin/ruff check nova streams schemas gateway analytics tests bench
	$(VENV)/bin/mypy  # the packages, tests and bench included, are listed in pyproject.toml

bench: kafka-jars ## benchmarks: each prints its figure next to a baseline measured in the same run
	$(PY) bench/sync.py
	$(PY) bench/pipeline.py
	$(PY) bench/analytics.py
	$(PY) bench/router.py
	$(PY) bench/intent.py

bench-peer: kafka-jars ## Nova's sync path next to a LiteLLM proxy (installed on first use) on one fake upstream
	$(PY) bench/peer.py

bench-soak: kafka-jars ## memory: RSS of gateway, worker and broker over 5 minutes at half load (first third vs last)
	$(PY) bench/soak.py --minutes $${NOVA_SOAK_MINUTES:-5}

chaos: kafka-jars ## nova up under load while its worker (3x) and broker (1x) are SIGKILLed; prints the counts
	$(PY) bench/chaos.py --requests $${NOVA_CHAOS_REQUESTS:-10000}

up: kafka-jars ## run the stack in the foreground (Ctrl-C stops all of it)
	$(NOVA) up

clean: ## remove the virtualenv and caches (Nova's data dir is left alone)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install kafka-jars browser demo test lint bench bench-peer bench-soak chaos up clean
