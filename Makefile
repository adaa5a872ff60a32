# Quick start: `make lab` (set up, then JupyterLab on notebooks/) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab
TOOLS := .venv-tools
# The Hub tests' proxy (JupyterHub's configurable-http-proxy, from npm), kept inside the venv.
CHP_STAMP := $(VENV)/node/.installed
# Jupyter refuses to run as root unless told; machines in containers often are root.
LAB := $(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test check test-quick bench notebooks clean

# uv installs in a fraction of pip's time (a fresh clone's `make lab`: about 36 s instead of 75 s),
# compiling bytecode as pip does (without it, where PYTHONDONTWRITEBYTECODE is set, every server and
# kernel would compile its imports again at each start); pip does it wherever uv can't (no uv for
# the platform, an index only pip is configured for).
INSTALL = $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '$(1)' || $(PY) -m pip install --quiet -e '$(1)'

# make lab installs what JupyterLab and the examples need; make test adds the test tools to it.
$(LAB_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv || echo "claude-magic: uv is not available here; pip installs instead"
	$(call INSTALL,.[lab])
	$(PY) -m compileall -q claude_magic >/dev/null  # the package's own bytecode too (an editable install has none yet)
	touch $(LAB_STAMP)

$(STAMP): $(LAB_STAMP)
	$(call INSTALL,.[dev])
	touch $(STAMP)

# import-linter lives apart: its dependencies (rich, click) would make httpx load its CLI in the
# package's venv, and every start-up figure measured there would include it.
$(TOOLS)/.installed: Makefile
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet import-linter==2.17
	touch $@

$(CHP_STAMP):
	npm install --prefix $(VENV)/node --no-save --silent configurable-http-proxy
	touch $@

## lab: JupyterLab on notebooks/, its server extension holding the key (no kernel sees it);
## without ANTHROPIC_API_KEY, the server's upstream is the offline stand-in
lab: $(LAB_STAMP)
	@if [ -n "$$ANTHROPIC_API_KEY" ]; then \
		echo "claude-magic: the Jupyter server holds ANTHROPIC_API_KEY; its kernels reach Claude through it"; \
		exec $(LAB); \
	else \
		echo "claude-magic: ANTHROPIC_API_KEY is not set: the Jupyter server's upstream is the offline stand-in (set it to ask Claude)"; \
		exec $(PY) -m claude_magic.testing run -- $(LAB); \
	fi

## test: the checks (layers, lint, types), then the whole suite (real kernels and browsers included)
test: $(STAMP) $(CHP_STAMP) check
	$(PY) -m pytest

## check: the architecture's import contracts, ruff and mypy on the package
check: $(STAMP) $(TOOLS)/.installed
	PYTHONPATH=. $(TOOLS)/bin/lint-imports
	$(VENV)/bin/ruff check claude_magic
	$(VENV)/bin/mypy

## test-quick: the suite without the slower real-kernel, browser and JupyterHub tests
test-quick: $(STAMP) $(CHP_STAMP)
	$(PY) -m pytest -m "not kernel and not browser and not hub"

## notebooks: re-run the example notebooks against the stand-in and save their outputs (what nbval compares)
# Each notebook runs as Jupyter runs it (its kernel told its path), with a fresh home for the conversations.
notebooks: $(STAMP)
	home=$$(mktemp -d) && for notebook in notebooks/*.ipynb; do \
		env -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN -u ANTHROPIC_BASE_URL \
			JPY_SESSION_NAME=$(CURDIR)/$$notebook CLAUDE_MAGIC_HOME=$$home CLAUDE_MAGIC_LIVE_UPDATES=0 \
			$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace $$notebook || exit 1; \
	done; rm -rf $$home

## bench: the benchmarks under bench/
bench: $(STAMP)
	$(PY) bench/stream.py
	$(PY) bench/render.py
	$(PY) bench/startup.py
	$(PY) bench/context.py
	$(PY) bench/compare.py
	$(PY) bench/caching.py
	$(PY) bench/store.py
	$(PY) bench/prepare.py
	$(PY) bench/memory.py
	$(PY) bench/limiter.py
	$(PY) bench/first_answer.py
	$(PY) bench/replay.py
	$(PY) bench/proxy.py
	$(PY) bench/kernel_start.py
	$(PY) bench/map.py

clean:
	rm -rf $(VENV) $(TOOLS) dist build *.egg-info .pytest_cache
