# The README's two commands: `make demo` and `make test`. Both create or update .venv
# first. The stamp file makes a second call install nothing; a changed pyproject.toml
# is newer than the stamp, so it is picked up.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
EXTRAS  := train,export,guardrails,dev
DEMO_OUT ?= demo

.PHONY: venv demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/profy demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check profy guardrails tests benchmarks

# The whole suite, slow end-to-end tests included (CI runs this).
test: lint
	$(BIN)/pytest -q

# Everything but the slow tests, for quick local iterations.
test-fast: lint
	$(BIN)/pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .hypothesis .ruff_cache
