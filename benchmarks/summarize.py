"""Write benchmarks/README.md: one Markdown table of the figures in benchmarks/results/*.json.

    python benchmarks/summarize.py [--results DIR] [--out FILE]

Reads every result file the bench_*.py scripts wrote and keeps the figures a reader compares:
timings with their spread (median, min-max, repeats), ratios against a named alternative
(`*speedup*`), rates (`*_per_s`), single timings (`*_s`, `*_ms`) and score summaries
(`mean_of_means`, `max_std`, a check's `precision` / `recall`). Each row names the machine it
was measured on. No benchmark is run here; `make bench` runs them first.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SKIP_KEYS = {"machine", "measured_at", "benchmark", "command", "note", "targets"}
SPREAD = {"median_s", "min_s", "max_s", "repeats"}


def _machine(info: dict[str, Any]) -> str:
    parts = [f"{info.get('cpu_model') or 'cpu'} x{info.get('cpu_count', '?')}",
             f"Python {info.get('python', '?')}"]
    if "torch" in info:
        parts.append(f"torch {info['torch']} ({info.get('torch_threads', '?')} threads)")
    parts.append(info.get("platform", ""))
    return ", ".join(p for p in parts if p)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _label(item: Any, index: int) -> str:
    """How a list entry is named in a figure: its mode/name (and fold), else its index."""
    if not isinstance(item, dict):
        return str(index)
    name = item.get("mode") or item.get("name") or str(index)
    return f"{name} fold {item['fold']}" if "fold" in item else str(name)


def figures(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(figure name, formatted value) for every figure worth a row, depth-first."""
    rows: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        return rows
    if "median_s" in data:
        # sub-second timings (inference latency) read better in ms
        scale, unit = (1e3, "ms") if data.get("max_s", data["median_s"]) < 1 else (1.0, "s")
        med, lo, hi = (scale * data.get(k, data["median_s"]) for k in ("median_s", "min_s",
                                                                       "max_s"))
        if data.get("repeats", 1) > 1:
            rows.append((path, f"{_fmt(med)} {unit} median ({_fmt(lo)}-{_fmt(hi)} {unit}, "
                               f"n={data['repeats']})"))
        else:
            rows.append((path, f"{_fmt(med)} {unit} (one run)"))
    for key, value in data.items():
        if key in SKIP_KEYS or key in SPREAD or key.startswith("target"):
            continue
        name = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            rows.extend(figures(value, name))
        elif isinstance(value, list):  # e.g. one entry per model: named by its identity
            for i, item in enumerate(value):
                rows.extend(figures(item, f"{name}[{_label(item, i)}]"))
        elif isinstance(value, bool) or not isinstance(value, int | float):
            continue
        elif "speedup" in key:
            rows.append((name, f"{value:.2f}x"))
        elif key.endswith("_per_s"):
            rows.append((name, f"{_fmt(value)} /s"))
        elif key.endswith("_s"):
            rows.append((name, f"{_fmt(value)} s"))
        elif key.endswith("_ms"):
            rows.append((name, f"{_fmt(value)} ms"))
        elif key in ("mean_of_means", "max_std", "min_mean", "precision", "recall"):
            rows.append((name, f"{value:.3f}"))
    return rows


def render(results: Path) -> str:
    """The Markdown page for every ``*.json`` under ``results``."""
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/summarize.py` from `benchmarks/results/*.json` "
             "(`make bench` runs every `bench_*.py`, then this). Timings are wall-clock on the "
             "machine named in each row, whose load (other work on it) skews them; ratios (`x`) "
             "compare against the alternative named in the figure, measured in the same run. "
             "Figures on the synthetic corpus say nothing about the real corpus.", ""]
    machines: dict[str, int] = {}
    table = ["| benchmark | figure | value | measured | machine | load (1 min) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        machine = _machine(data.get("machine", {}))
        label = machines.setdefault(machine, len(machines) + 1)
        when = str(data.get("measured_at", ""))[:16].replace("T", " ")
        load = data.get("machine", {}).get("load_average_1m_at_end")
        load = f"{load:.1f}" if isinstance(load, int | float) else ""
        name = data.get("benchmark", path.stem)
        for figure, value in figures(data):
            table.append(f"| {name} | `{figure}` | {value} | {when} | M{label} | {load} |")
    lines += table + ["", "Machines:", ""]
    lines += [f"- M{label}: {machine}" for machine, label in machines.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=HERE / "README.md")
    args = parser.parse_args(argv)
    if not any(args.results.glob("*.json")):
        parser.exit(2, f"summarize: no *.json under {args.results}\n")
    text = render(args.results)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, prefix=".summary-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)  # atomic: a reader never sees half a table
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
