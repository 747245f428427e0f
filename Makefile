# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make run    rehearse the whole runbook against the built-in sandbox
#   make test   run the whole test suite (what CI runs)
# Both create .venv and install the pinned dependencies first; both are safe to repeat.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test lab docs sim check notebooks install clean chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required (found %s); set PYTHON=/path/to/python3.11" % sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true
# Build backends' warnings (setuptools' deprecations, which pip repeats as BuildBackendWarning,
# some 55 lines on a first install) are for the package's maintainers, not for whoever runs
# make: they are UserWarnings, which this ignores. pip's own warnings and errors still show.
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c 'import runbook_lib, papermill, mkdocs_jupyter, scim2_server' \
		|| { echo "Installing the dependencies failed; see the pip output above." >&2; exit 1; }
	@touch $(STAMP)

# Browser tests render the docs site in Debian's Chromium; install it when it is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests..."; \
		$(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	}

install: $(STAMP)

run: $(STAMP)
	$(BIN)/runbook run $(ARGS)

test: $(STAMP) chromium
	$(BIN)/python -m pytest $(ARGS)

# make check: demonstrates the drift check on the sandbox (rehearse, check = 0, careless changes,
# check = 1). With ARGS, or with tenant settings (RUNBOOK_TENANT_ID...) in the environment, it
# runs a plain `runbook check` instead, e.g. make check ARGS="--target tenant --report reports/".
check: $(STAMP)
	$(BIN)/python -m runbook_lib._check_demo $(ARGS)

# make lab: JupyterLab on notebooks/ with the sandbox's settings (started here) or, with tenant
# settings in the environment or ARGS=--target tenant, yours; Ctrl-C stops Lab and the sandbox.
lab: $(STAMP)
	$(BIN)/python -m runbook_lib._lab $(ARGS)

docs: $(STAMP)
	$(BIN)/runbook docs

sim: $(STAMP)
	$(BIN)/runbook sim $(ARGS)

notebooks: $(STAMP)
	$(BIN)/runbook refresh-notebooks

clean:
	rm -rf $(VENV) site runs .cache .pytest_cache
