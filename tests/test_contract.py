"""The torch-free contract: both halves import it, nothing else redefines it.

- guardrails imports nothing of profy but ``profy.contract`` and ``profy.errors`` (read
  from the source, and checked again in a fresh process that imports every module);
- the contract imports no torch and nothing of profy but itself and ``profy.errors``;
- every run-folder file name and the modes are spelled once, in the contract.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from profy.contract import layout, model_io, schemas

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("profy.contract", "profy.errors")


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _profy_imports(path: Path) -> set[str]:
    """Absolute ``profy`` modules ``path`` imports (``from profy import x`` counts as profy.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "profy"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "profy":
                found |= {f"profy.{a.name}" for a in node.names}
            elif node.module.startswith("profy."):
                found.add(node.module)
    return found


def _allowed(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED)


def test_guardrails_source_imports_only_the_contract_and_errors():
    offending = {f"{p.relative_to(ROOT)}: {m}" for p in _sources("guardrails")
                 for m in _profy_imports(p) if not _allowed(m)}
    assert not offending, sorted(offending)


def test_contract_source_imports_only_itself_and_errors():
    offending = {f"{p.relative_to(ROOT)}: {m}" for p in _sources("profy/contract")
                 for m in _profy_imports(p) if not _allowed(m)}
    assert not offending, sorted(offending)


def test_the_import_rule_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from profy.features import x\nimport profy.training\nfrom profy import cli\n")
    assert _profy_imports(bad) == {"profy.features", "profy.training", "profy.cli"}
    assert not any(_allowed(m) for m in _profy_imports(bad))


def test_every_guardrails_module_loads_without_torch_or_profy_internals():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import guardrails
        for info in pkgutil.walk_packages(guardrails.__path__, "guardrails."):
            importlib.import_module(info.name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("profy", "torch",
                                                                        "torchaudio"))
        print("\\n".join(loaded))
    """)
    result = subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = result.stdout.split()
    assert "guardrails" not in loaded and loaded, result.stdout
    extra = [m for m in loaded if m != "profy" and not _allowed(m)]
    assert not extra, extra


# --- spelled once ---------------------------------------------------------------------

# Names with a suffix: ``config_hash`` (the file) is also a JSON key of that name.
_FILE_NAMES = {value for name, value in vars(layout).items()
               if name.endswith("_FILE") and isinstance(value, str) and "." in value}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """String literals of ``path`` that are not docstrings, with their line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_layout_names_every_run_file_and_they_differ():
    assert {"config.yaml", "complete_results.json", "splits.parquet", "predictions.parquet",
            "tags.json", "feature_index.parquet", "audio_stats.parquet"} <= _FILE_NAMES
    assert len(_FILE_NAMES) == len([n for n in vars(layout) if n.endswith("_FILE")]) - 1


@pytest.mark.parametrize("package", ["profy", "guardrails"])
def test_run_file_names_are_spelled_only_in_the_layout(package):
    layout_file = Path(layout.__file__).resolve()
    spelled = sorted(f"{p.relative_to(ROOT)}:{line}: {value!r}"
                     for p in _sources(package) if p.resolve() != layout_file
                     for line, value in _string_constants(p) if value in _FILE_NAMES)
    assert not spelled, "\n".join(spelled)


def test_modes_and_model_inputs_are_defined_once():
    pattern = ("MODES", "INPUT_LAYOUT", "LAYOUT", "INPUTS", "INPUT_NAMES", "_CACHE_FORMAT",
               "_FORMAT_VERSION", "_MODES")
    defined = sorted(f"{p.relative_to(ROOT)}: {t.id}" for package in ("profy", "guardrails")
                     for p in _sources(package)
                     for node in ast.parse(p.read_text(encoding="utf-8")).body
                     if isinstance(node, ast.Assign | ast.AnnAssign)
                     for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                     if isinstance(t, ast.Name) and t.id in pattern)
    assert defined == ["profy/contract/model_io.py: INPUT_LAYOUT",
                       "profy/contract/schemas.py: MODES"], defined
    assert model_io.MODES is schemas.MODES


def test_inputs_for_each_mode_follow_the_layout():
    for mode in model_io.MODES:
        spec = model_io.inputs_for(mode)
        assert tuple(spec) == model_io.input_names(mode)
        assert all(spec[n] == model_io.INPUT_LAYOUT[n] for n in spec)
        assert set(model_io.output_names(mode)) >= {"logits", "probs"}
    assert model_io.TIME_AXIS == {"sensor": 1, "sensor_mask": 1, "logmel": 2, "audio_mask": 1}
    with pytest.raises(ValueError, match="unknown mode"):
        model_io.input_names("video")
