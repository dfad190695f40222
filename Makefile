# The ways in: make setup, make run, make test, make bench, make screenshots.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.perftop-installed

.PHONY: setup run test lint bench soak screenshots clean

setup: system $(STAMP)
	@$(PY) -m compileall -q perftop  # bytecode up front: start-up then skips compiling perftop

.PHONY: system
system:
	@scripts/setup-system.sh

# The venv sees the system site-packages because `import bcc` only exists there (python3-bpfcc).
$(STAMP): pyproject.toml
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

run: setup
	$(VENV)/bin/perftop $(ARGS)

lint: setup
	$(VENV)/bin/ruff format --check perftop tests bench
	$(VENV)/bin/ruff check perftop tests bench
	$(VENV)/bin/mypy

test: lint tests/.cache/speedscope-file-format-schema.json
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

tests/.cache/speedscope-file-format-schema.json:
	@scripts/fetch-speedscope-schema.sh $@

# About 14 minutes; writes bench/RESULTS.md. ARGS='--only startup,soak' runs some of them.
bench: setup
	$(PY) bench/run_all.py $(ARGS)

# perftop's RSS and fds over 10 minutes of process churn; ARGS='--minutes 60' for longer.
soak: setup
	$(PY) bench/soak.py $(ARGS)

screenshots: setup
	$(PY) scripts/make_screenshots.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
