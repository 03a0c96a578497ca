"""``profy release-notes``: what changed between a run and its baseline, as Markdown.

Sections: per-mode macro-F1 mean/std deltas with fold tables; gate status changes (both
runs' ``guardrails/verdict.json``); config diff (dotted paths); data and normalization
artifact changes (file hashes, sample counts); ONNX parity and latency deltas (the
verdicts' ``onnx`` checks). Anything a run lacks is written as "not available", never
guessed. Torch-free: a tag resolves through :mod:`profy.contract.tags`.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from profy.contract.atomic import atomic_write_text
from profy.contract.layout import (
    AUDIO_STATS_FILE,
    COMPLETE_RESULTS_FILE,
    MANIFEST_FILE,
    SPLITS_FILE,
    default_registry,
)
from profy.contract.schemas import MODES
from profy.errors import ConfigError, MalformedFileError
from profy.visualization._artifacts import check_status, read_json, read_verdict, require_run

__all__ = ["DATA_ARTIFACTS", "flatten", "release_notes", "resolve_baseline",
           "write_release_notes"]

# Run-folder files whose content defines the data a run saw.
DATA_ARTIFACTS = (MANIFEST_FILE, SPLITS_FILE, AUDIO_STATS_FILE,
                  "features/feature_index.parquet")
NA = "not available"


def resolve_baseline(baseline: str | Path, *, run: Path,
                     registry: str | Path | None = None) -> tuple[Path, str]:
    """A baseline folder, or a tag resolved via the registry: ``(run_dir, label)``.

    Args:
        baseline: a run folder, or a semantic tag such as ``sensor-v1``.
        run: the run being described (its parent holds the default ``tags.json``).
        registry: the tag registry. (Default: ``RUN/../tags.json``)

    Raises:
        ConfigError: neither a folder nor a known tag.
        MalformedFileError: a tagged file changed since it was tagged.
    """
    path = Path(baseline)
    if path.is_dir():
        return require_run(path), str(path)
    from profy.contract.tags import resolve_tag

    reg = Path(registry) if registry is not None else default_registry(run)
    try:
        entry = resolve_tag(reg, str(baseline), verify=True)
    except ConfigError as exc:
        raise ConfigError(f"baseline {str(baseline)!r} is not a run folder, nor a tag: "
                          f"{exc}") from None
    return require_run(entry.run_dir), f"tag `{entry.tag}` ({entry.mode}, {entry.run_dir})"


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"section.key": value}``; lists stay values.

    Example:
        >>> flatten({"train": {"epochs": 2, "modes": ["sensor"]}})
        {'train.epochs': 2, 'train.modes': ['sensor']}
    """
    if not isinstance(obj, dict):
        return {prefix: obj} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def _results(run: Path) -> dict[str, Any]:
    obj = read_json(run / COMPLETE_RESULTS_FILE)
    if not isinstance(obj, dict) or not isinstance(obj.get("modes"), dict):
        raise MalformedFileError(run / COMPLETE_RESULTS_FILE, "no 'modes' in the results")
    return obj


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _f(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _scores_section(new: dict, old: dict) -> list[str]:
    nm, om = new["modes"], old["modes"]
    modes = [m for m in MODES if m in nm or m in om] + sorted((set(nm) | set(om)) - set(MODES))
    lines = ["## Macro F1 per mode (held-out, mean ± std over folds)", "",
             "| mode | run | baseline | Δ mean | Δ std |", "| --- | --- | --- | --- | --- |"]
    folds_md: list[str] = []
    for mode in modes:
        a, b = nm.get(mode, {}), om.get(mode, {})
        am, asd = _num(a.get("mean", {}).get("macro_f1")), _num(a.get("std", {}).get("macro_f1"))
        bm, bsd = _num(b.get("mean", {}).get("macro_f1")), _num(b.get("std", {}).get("macro_f1"))
        run_s = f"{_f(am)} ± {_f(asd)}" if a else NA
        base_s = f"{_f(bm)} ± {_f(bsd)}" if b else NA
        lines.append(f"| {mode} | {run_s} | {base_s} | {_f(_delta(am, bm), True)} | "
                     f"{_f(_delta(asd, bsd), True)} |")
        fa, fb = a.get("folds", {}), b.get("folds", {})
        keys = sorted(set(fa) | set(fb), key=int)
        folds_md += ["", f"### {mode}: macro F1 per fold", "",
                     "| fold | run | baseline | Δ |", "| --- | --- | --- | --- |"]
        for k in keys:
            x = _num(fa.get(k, {}).get("macro_f1"))
            y = _num(fb.get(k, {}).get("macro_f1"))
            folds_md.append(f"| {k} | {_f(x)} | {_f(y)} | {_f(_delta(x, y), True)} |")
    return [*lines, *folds_md]


def _gates_section(new_v: dict | None, old_v: dict | None) -> list[str]:
    lines = ["## Gate status", ""]
    if new_v is None or old_v is None:
        which = " and ".join(w for w, v in (("run", new_v), ("baseline", old_v)) if v is None)
        lines.append(f"{NA}: no guardrails/verdict.json in the {which} "
                     "(run `guardrails ci RUN` on it first).")
        if new_v is not None:
            lines.append(f"\nRun verdict: **{new_v.get('verdict', '?')}**.")
        return lines
    a = {c["name"]: check_status(c) for c in new_v.get("checks", [])}
    b = {c["name"]: check_status(c) for c in old_v.get("checks", [])}
    lines.append(f"Verdict: baseline **{old_v.get('verdict', '?')}** -> run "
                 f"**{new_v.get('verdict', '?')}**.")
    changed = [(n, b.get(n, "absent"), a.get(n, "absent")) for n in sorted(set(a) | set(b))
               if a.get(n) != b.get(n)]
    if not changed:
        lines.append(f"\nNo check changed status ({len(a)} checks).")
        return lines
    lines += ["", "| check | baseline | run |", "| --- | --- | --- |"]
    lines += [f"| `{n}` | {x} | {y} |" for n, x, y in changed]
    return lines


def _config_section(new: dict, old: dict) -> list[str]:
    a = flatten(new.get("run", {}).get("config", {}))
    b = flatten(old.get("run", {}).get("config", {}))
    ha, hb = new.get("run", {}).get("config_hash", "?"), old.get("run", {}).get("config_hash", "?")
    lines = ["## Config", "", f"Config hash: baseline `{str(hb)[:16]}` -> run `{str(ha)[:16]}`"
             f"{' (unchanged)' if ha == hb else ''}."]
    changed = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    if not changed:
        return [*lines, "", "No config key changed."]
    lines += ["", f"{len(changed)} key(s) changed:", "", "| key | baseline | run |",
              "| --- | --- | --- |"]
    lines += [f"| `{k}` | {b.get(k, '(absent)')} | {a.get(k, '(absent)')} |" for k in changed]
    return lines


def _sha(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _n_samples(run: Path) -> int | None:
    path = run / SPLITS_FILE
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        return len(set(pq.read_table(path, columns=["sample_id"]).column(0).to_pylist()))
    except Exception as exc:  # a damaged file is named, not skipped
        raise MalformedFileError(path, f"not readable Parquet ({exc})") from None


def _norm(run: Path) -> dict[str, tuple[str | None, Any, Any]]:
    out = {}
    for path in sorted((run / "norm_stats").glob("fold_*.json")):
        obj = read_json(path)
        obj = obj if isinstance(obj, dict) else {}
        out[f"norm_stats/{path.name}"] = (_sha(path), obj.get("n_samples"),
                                          obj.get("feature_config_hash"))
    return out


def _data_section(new_dir: Path, old_dir: Path) -> list[str]:
    def short(h: str | None) -> str:
        return "absent" if h is None else f"`{h[:12]}`"

    lines = ["## Data and normalization artifacts", "",
             f"Takes in splits.parquet: baseline {_n_samples(old_dir) or NA} -> run "
             f"{_n_samples(new_dir) or NA}.", "",
             "| artifact | baseline sha256 | run sha256 | changed |", "| --- | --- | --- | --- |"]
    for rel in DATA_ARTIFACTS:
        x, y = _sha(old_dir / rel), _sha(new_dir / rel)
        lines.append(f"| {rel} | {short(x)} | {short(y)} | {'yes' if x != y else 'no'} |")
    na, nb = _norm(new_dir), _norm(old_dir)
    lines += ["", "| normalization | baseline sha256 (n, feature cfg) | run sha256 (n, feature cfg)"
              " | changed |", "| --- | --- | --- | --- |"]
    for rel in sorted(set(na) | set(nb)):
        x, y = nb.get(rel, (None, None, None)), na.get(rel, (None, None, None))
        lines.append(f"| {rel} | {short(x[0])} ({x[1]}, {str(x[2])[:8]}) | {short(y[0])} "
                     f"({y[1]}, {str(y[2])[:8]}) | {'yes' if x[0] != y[0] else 'no'} |")
    if not na and not nb:
        lines.append(f"| norm_stats | {NA} | {NA} | - |")
    return lines


def _onnx_observed(verdict: dict | None) -> dict[str, Any]:
    if verdict is None:
        return {}
    return {c["name"]: c.get("observed") for c in verdict.get("checks", [])
            if c.get("category") == "onnx" and check_status(c) != "skip"}


def _onnx_section(new_v: dict | None, old_v: dict | None) -> list[str]:
    a, b = _onnx_observed(new_v), _onnx_observed(old_v)
    lines = ["## ONNX parity and latency", ""]
    if not a and not b:
        return [*lines, f"{NA}: neither verdict holds ONNX checks (export the models and run "
                        "`guardrails ci` with the onnx checks)."]
    fa, fb = flatten({"x": a}), flatten({"x": b})  # numbers nested in observed dicts, dotted
    lines += ["| check.metric | baseline | run | Δ |", "| --- | --- | --- | --- |"]
    for key in sorted(set(fa) | set(fb)):
        x, y = fb.get(key), fa.get(key)
        nx, ny = _num(x), _num(y)
        d = f"{ny - nx:+.4g}" if nx is not None and ny is not None else "-"
        lines.append(f"| `{key[2:]}` | {NA if x is None else x} | {NA if y is None else y} "
                     f"| {d} |")
    return lines


def release_notes(run: str | Path, baseline: str | Path, *,
                  registry: str | Path | None = None) -> str:
    """The Markdown release notes of ``run`` against ``baseline`` (folder or tag)."""
    new_dir = require_run(run)
    old_dir, label = resolve_baseline(baseline, run=new_dir, registry=registry)
    new, old = _results(new_dir), _results(old_dir)
    new_v, _ = read_verdict(new_dir)
    old_v, _ = read_verdict(old_dir)
    rid = new.get("run", {}).get("run_id", new_dir.name)
    bid = old.get("run", {}).get("run_id", old_dir.name)
    head = [f"# Release notes: {rid}", "",
            f"- run: `{new_dir}` (profile {new.get('run', {}).get('profile', '?')})",
            f"- baseline: {label} -> `{bid}` (profile {old.get('run', {}).get('profile', '?')})",
            ""]
    parts = [_scores_section(new, old), _gates_section(new_v, old_v),
             _config_section(new, old), _data_section(new_dir, old_dir),
             _onnx_section(new_v, old_v)]
    return "\n".join(head + [line for part in parts for line in [*part, ""]])


def write_release_notes(run: str | Path, baseline: str | Path, *, out: str | Path | None = None,
                        registry: str | Path | None = None) -> Path:
    """Write :func:`release_notes` atomically (default ``RUN/release_notes.md``)."""
    text = release_notes(run, baseline, registry=registry)
    target = Path(out) if out is not None else require_run(run) / "release_notes.md"
    return atomic_write_text(target, text)
