"""Shared helpers for benchmarks: machine description, repeat timing, JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo") as handle:
            names = [ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")]
        info["cpu_model"] = names[0] if names else ""
    except OSError:
        pass
    info["load_average_1m_at_end"] = os.getloadavg()[0]  # other work on the machine skews figures
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def timed(fn: Callable[[], Any], *, repeats: int = 1) -> tuple[list[float], Any]:
    """Run ``fn`` ``repeats`` times; return the wall-clock seconds of each and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def spread(seconds: list[float]) -> dict[str, float]:
    """Median, min, max and count of repeated timings."""
    return {"median_s": statistics.median(seconds), "min_s": min(seconds),
            "max_s": max(seconds), "repeats": len(seconds)}


def corpus_or_synth(corpus: Path | None, work: Path, size: str = "full") -> Path:
    """``corpus`` if given, else a ``size`` synthetic corpus generated (seed 0) in ``work``."""
    if corpus is not None:
        return corpus
    from profy.data import synthesize_corpus

    root = work / size
    synthesize_corpus(root, size=size, seed=0, progress=True)
    return root


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine and a timestamp."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), **payload}
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    print(f"results: {path.resolve()}")
    return path
