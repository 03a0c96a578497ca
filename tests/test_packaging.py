"""Package hygiene: public APIs are listed once, guardrails never imports torch."""

import importlib
import subprocess
import sys
import textwrap

import pytest

PACKAGES = ["profy", "profy.data", "profy.errors", "profy.config", "guardrails",
            "profy.contract.schemas", "profy.contract.layout", "profy.contract.model_io",
            "profy.contract.tags", "profy.contract.atomic", "profy.contract.hashing"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name):
    module = importlib.import_module(name)
    public = sorted(n for n in vars(module) if not n.startswith("_")
                    and not isinstance(getattr(module, n), type(sys)))
    declared = sorted(module.__all__)
    # everything declared exists; nothing public defined here is left undeclared
    assert all(hasattr(module, n) for n in declared)
    defined_here = [n for n in public if getattr(getattr(module, n), "__module__", name)
                    .startswith(name) and n not in ("annotations",)]
    assert set(defined_here) <= set(declared), set(defined_here) - set(declared)


def _run_isolated(code: str) -> subprocess.CompletedProcess:
    # A script file, not `python -c`: pyspark's doctest hook can swallow -c runs.
    return subprocess.run([sys.executable, "-"], input=textwrap.dedent(code), text=True,
                          capture_output=True, timeout=120)


def test_guardrails_cli_does_not_import_torch():
    result = _run_isolated("""
        import sys, io, contextlib
        from guardrails.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["schemas"]) == 0
            assert main(["schemas", "--json"]) == 0
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchaudio"))
        print("HEAVY", heavy)
        assert not heavy, heavy
        print("OK")
    """)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_profy_data_layer_is_torch_free():
    result = _run_isolated("""
        import sys
        import profy.data, profy.contract.schemas, profy.config
        assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
        print("OK")
    """)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.slow
def test_guardrails_extra_resolves_without_torch(tmp_path):
    """`pip install .[guardrails]` must never pull torch (a slim gate container relies on it)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--disable-pip-version-check", "--report", str(report), f"{root}[guardrails]"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"onnxruntime", "pyarrow", "profy"} <= names
    assert not {n for n in names if n.startswith(("torch", "nvidia-", "triton"))}, names
