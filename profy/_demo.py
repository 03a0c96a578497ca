"""``make demo`` / ``profy demo``: the main job end to end on the synthetic corpus.

Each stage is timed; the breakdown and every output path are printed at the end.
Stages: synth, read + inspect, features, train, export (release pair), gate
(``guardrails ci``), report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from profy.contract.layout import COMPLETE_RESULTS_FILE, default_registry

__all__ = ["run_demo"]


def run_demo(out: str | Path, *, size: str = "small", seed: int = 0, profile: str = "mm-audiofix",
             overrides: tuple[str, ...] = (), console: Any = None,
             export: bool = True) -> dict[str, float]:
    """Run synth -> inspect -> features -> cross-validated training into ``out``.

    ``export=False`` skips the ONNX export stage (tests that rerun the demo for the cache).

    Returns:
        Seconds per stage.
    """
    from rich.table import Table

    from profy.config import load_profile
    from profy.contract.console import make_console, print_table
    from profy.data import (
        build_manifest,
        render_report,
        report_from_manifest,
        synthesize_corpus,
    )
    from profy.features import compute_features
    from profy.training import render_cv_result, train

    console = console or make_console()
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
    # --skip-bad: takes breaking the gate's per-take data-quality rules are left out and
    # listed in RUN/quarantine.json, so the data verdict is about the data trained on.
    result = stage("train", lambda: train(cfg, corpus, out / "runs", cache_dir=cache, workers=2,
                                          profile=profile, progress=True, console=console,
                                          manifest=manifest, skip_bad=True))
    render_cv_result(result, console)
    outputs["run folder"] = result.run_dir
    outputs["results"] = result.run_dir / COMPLETE_RESULTS_FILE

    # Release selection only (what the smoke replay runs): multimodal and sensor at the
    # best sensor-only fold, each in a fresh process, both at once (not all 9 models).
    if export:
        from profy.export import export_models, select_models
        from profy.training import register_tag

        ((_, best),) = select_models(result.run_dir, modes=["sensor"])
        # Tag first, as the plan does (and the gate's replays look them up), so each
        # released ONNX file carries its tag in its metadata; still one parallel batch.
        registry = default_registry(result.run_dir)
        release = {("multimodal", best): "mm-audiofix", ("sensor", best): "sensor-v1"}
        for (mode, fold), tag in release.items():
            register_tag(registry, tag, result.run_dir, mode=mode, folds=(fold,), replace=True)
        exported = stage("export", lambda: export_models(result.run_dir, list(release),
                                                         tag=release, workers=2))
        for item in exported:
            console.print(f"{item.mode} fold {item.fold}: {item.onnx_path} "
                          f"({item.size_bytes / 1e6:.2f} MB, {item.seconds:.1f} s)")
        outputs["onnx"] = result.run_dir / "onnx"
        outputs["tags"] = registry

    # The release gate on this run, exactly as CI runs it (`guardrails ci RUN`): the
    # verdict table is printed; a red verdict is a finding to read, not a demo crash.
    from guardrails.cli import main as guardrails_main

    verdict_code = stage("gate", lambda: guardrails_main(["ci", str(result.run_dir)]))
    outputs["verdict"] = result.run_dir / "guardrails" / "verdict.json"
    console.print(f"guardrails ci exit code {verdict_code} "
                  f"({'pass' if verdict_code == 0 else 'fail: see the table above'})")

    # The report stage stays LAST: it embeds the verdict written by the stages above.
    from profy.visualization.report import write_report

    report = stage("report", lambda: write_report(result.run_dir))  # printed last, below

    breakdown = Table(title="demo stages")
    breakdown.add_column("stage")
    breakdown.add_column("seconds", justify="right")
    for name, seconds in timings.items():
        breakdown.add_row(name, f"{seconds:.1f}")
    breakdown.add_row("[bold]total", f"[bold]{sum(timings.values()):.1f}")
    print_table(console, breakdown)
    for name, path in outputs.items():
        console.print(f"{name:>11}: {path}")
    console.print(f"report.html: {report.resolve()}")  # the last line: where to look
    return timings
