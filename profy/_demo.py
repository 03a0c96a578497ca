"""``make demo`` / ``profy demo``: the main job end to end on the synthetic corpus.

Each stage is timed; the breakdown and every output path are printed at the end.
Stages that later issues add (export, gates, report) slot in here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]


def run_demo(out: str | Path, *, size: str = "small", seed: int = 0, profile: str = "mm-audiofix",
             overrides: tuple[str, ...] = (), console: Any = None) -> dict[str, float]:
    """Run synth -> inspect -> features -> cross-validated training into ``out``.

    Returns:
        Seconds per stage.
    """
    from rich.console import Console
    from rich.table import Table

    from profy.config import load_profile
    from profy.data import (
        build_manifest,
        render_report,
        report_from_manifest,
        synthesize_corpus,
    )
    from profy.features import compute_features
    from profy.training import render_cv_result, train

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
    # Read and check every take once; the report and the features share it.
    manifest = stage("read + inspect", lambda: build_manifest(corpus, skip_bad=True,
                                                              progress=True))
    render_report(report_from_manifest(manifest), console)

    cache = out / "cache"
    run = stage("features", lambda: compute_features(corpus, manifest.table, out / "features",
                                                     cache_dir=cache, workers=2, progress=True))
    console.print(f"{run.n_takes} takes: {run.takes_per_s:.1f} takes/s, "
                  f"{run.audio_s_per_s:.0f} s of audio per second (cache: {run.cache.hits} hits, "
                  f"{run.cache.misses} misses, {run.cache.rejected} rejected)")
    outputs["audio stats"] = run.audio_stats_path
    outputs["features"] = run.index_path

    # Training reuses the manifest and the cache: no take is read or featurized twice.
    cfg = load_profile(profile, [f"train.seed={seed}", *overrides])
    result = stage("train", lambda: train(cfg, corpus, out / "runs", cache_dir=cache, workers=2,
                                          profile=profile, progress=True, console=console,
                                          manifest=manifest))
    render_cv_result(result, console)
    outputs["run folder"] = result.run_dir
    outputs["results"] = result.run_dir / "complete_results.json"

    breakdown = Table(title="demo stages")
    breakdown.add_column("stage")
    breakdown.add_column("seconds", justify="right")
    for name, seconds in timings.items():
        breakdown.add_row(name, f"{seconds:.1f}")
    breakdown.add_row("[bold]total", f"[bold]{sum(timings.values()):.1f}")
    console.print(breakdown)
    for name, path in outputs.items():
        console.print(f"{name:>11}: {path}")
    return timings
