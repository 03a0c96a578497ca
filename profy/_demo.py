"""``make demo`` / ``profy demo``: the main job end to end on the synthetic corpus.

Each stage is timed; the breakdown and every output path are printed at the end.
Stages that later issues add (features, training, export, gates) slot in here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]


def run_demo(out: str | Path, *, size: str = "small", seed: int = 0,
             console: Any = None) -> dict[str, float]:
    """Run synth -> inspect -> prepare into ``out``; return seconds per stage."""
    from rich.console import Console
    from rich.table import Table

    from profy.data import inspect_corpus, prepare_corpus, render_report, synthesize_corpus

    console = console or Console(highlight=False, soft_wrap=True)
    out = Path(out)
    corpus = out / "corpus"
    timings: dict[str, float] = {}
    outputs: dict[str, Path] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        console.rule(f"[bold]{name}")
        start = time.perf_counter()
        result = fn()
        timings[name] = time.perf_counter() - start
        return result

    summary = stage("synth", lambda: synthesize_corpus(corpus, size=size, seed=seed,
                                                       progress=True))
    outputs["corpus"] = Path(summary.out_dir).resolve()
    report = stage("inspect", lambda: inspect_corpus(corpus, progress=True))
    render_report(report, console)
    prepared = stage("prepare", lambda: prepare_corpus(corpus, out, seed=seed, progress=True))
    outputs["manifest"] = prepared.manifest_path
    outputs["splits"] = prepared.splits_path

    breakdown = Table(title="demo stages")
    breakdown.add_column("stage")
    breakdown.add_column("seconds", justify="right")
    for name, seconds in timings.items():
        breakdown.add_row(name, f"{seconds:.1f}")
    breakdown.add_row("[bold]total", f"[bold]{sum(timings.values()):.1f}")
    console.print(breakdown)
    for name, path in outputs.items():
        console.print(f"{name:>9}: {path}")
    return timings
