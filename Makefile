# confbot — two commands for a newcomer: `make run` and `make test`.
# Both install whatever is missing (Debian packages, the venv, our pjsua2 build) first.
SHELL := /bin/sh
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= config.toml
PYTEST_ARGS ?=

.PHONY: run test bench deps system venv pjsua2 prompts check-config clean

run: deps
	$(PY) -m bot.cli prompts render --config $(CONFIG)
	$(PY) -m bot.cli run --config $(CONFIG)

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PY) bench/booking.py
	$(PY) bench/mixer.py
	$(PY) bench/calls.py
	$(PY) bench/ivr.py
	$(PY) bench/soak.py --calls 5000

check-config: venv
	$(PY) -m bot.cli check-config $(CONFIG)

deps: system venv pjsua2

system:
	@sh scripts/install-system.sh

# The venv is rebuilt when the lock or the project metadata change.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages (requirements.lock)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# Our own pjsua2 (no 4-call limit), built from pjproject source; cached in var/wheels/.
pjsua2: venv
	@PYTHON=$(abspath $(PY)) bash scripts/build-pjsua2.sh --install

clean:
	rm -rf $(VENV) var/wheels var/build
