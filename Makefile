# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test docs bench clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned first: a CPU wheel lies on disk; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,peft,langs,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dece demo
	$(VENV)/bin/dece report runs/demo

# One pytest worker per core (pytest-xdist); a file's tests stay in one worker (they share its fixtures).
test: $(STAMP) chromium
	$(PY) -m pytest -n auto --dist loadfile

# Headless Chromium renders the HTML report in tests/test_reporting_render.py (Debian package; root).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: the HTML render test will be skipped"

# The documentation site in site/ (README.md is its home page); --strict: a broken link fails the build.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/loss_bench.py

clean:
	rm -rf $(VENV) runs .cache site
