"""Drawing: PNG bytes from the numbers of :mod:`profy.visualization.compute`.

matplotlib is imported inside :func:`_pyplot` (Agg backend, no display needed), so
importing this module costs nothing and a run without the ``report`` extra can still
compute every number. Each ``draw_*`` takes computed numbers and returns PNG bytes;
:func:`write_plots` computes, draws and writes ``RUN/plots/*.png`` atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import profy.visualization.compute as compute
from profy.contract.atomic import atomic_write_bytes
from profy.contract.layout import COMPLETE_RESULTS_FILE, MODALITY_WEIGHTS_FILE, PREDICTIONS_FILE
from profy.contract.schemas import LABELS
from profy.errors import ConfigError
from profy.visualization._artifacts import require_run

__all__ = [
    "PLOT_NAMES",
    "draw_confusion",
    "draw_fold_variance",
    "draw_gate_quality",
    "draw_reliability",
    "draw_weight_distribution",
    "write_plots",
]

# File stem -> caption, in report order.
PLOT_NAMES = {
    "modality_weights": "Sensor weight of the fusion gate per fold (held-out multimodal takes)",
    "confusion": "Confusion matrices per mode, pooled over folds",
    "fold_variance": "Macro F1 per fold and mode (bar: mean, whisker: std)",
    "gate_quality": "Gate sensor weight vs audio SNR proxy",
    "reliability": "Reliability diagram of P(pro) per mode",
}
_DPI = 100


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'profy[report]'") from None
    matplotlib.use("Agg", force=True)  # headless: CI and containers have no display
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def draw_weight_distribution(stats: list[compute.WeightStats]) -> bytes:
    """Histogram of sensor weights, one panel per fold (the plan's plot)."""
    plt = _pyplot()
    folds = [s for s in stats if s.fold != "all"]
    fig, axes = plt.subplots(1, len(folds), figsize=(3.6 * len(folds), 3.0), squeeze=False,
                             sharey=True)
    edges = compute.WEIGHT_BINS
    for ax, s in zip(axes[0], folds, strict=True):
        ax.bar(edges[:-1], s.counts, width=np.diff(edges), align="edge", color="#3b6ea8")
        ax.axvline(0.5, color="#c0392b", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_title(f"fold {s.fold}: n={s.n}, mean {s.mean:.3f}\n"
                     f"sensor>=0.5: {100 * s.frac_sensor_ge_half:.0f}%", fontsize=9)
        ax.set_xlabel("sensor weight")
    axes[0][0].set_ylabel("takes")
    return _png(fig)


def draw_confusion(matrices: dict[str, np.ndarray]) -> bytes:
    """One annotated 2x2 matrix per mode (rows true, columns predicted)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.4 * len(matrices), 3.0),
                             squeeze=False, layout="constrained")
    for col, (ax, (mode, cm)) in enumerate(zip(axes[0], matrices.items(), strict=True)):
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
        for (i, j), value in np.ndenumerate(cm):
            ax.text(j, i, str(int(value)), ha="center", va="center",
                    color="white" if value > cm.max() / 2 else "black", fontsize=12)
        ax.set_xticks(range(len(LABELS)), LABELS)
        ax.set_yticks(range(len(LABELS)), LABELS if col == 0 else [""] * len(LABELS))
        ax.set_xlabel("predicted")
        if col == 0:  # one shared axis title: repeated ones collide with the tick labels
            ax.set_ylabel("true")
        ax.set_title(f"{mode} (n={int(cm.sum())})", fontsize=10)
    return _png(fig)


def draw_fold_variance(scores: pd.DataFrame) -> bytes:
    """Per-fold macro F1 dots over a mean bar with a std whisker, per mode."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    modes = list(dict.fromkeys(scores["mode"]))
    for i, mode in enumerate(modes):
        part = scores[scores["mode"] == mode]
        mean, std = float(part["mean"].iloc[0]), float(part["std"].iloc[0])
        ax.bar(i, mean, color="#d5e3f0", edgecolor="#3b6ea8", width=0.6)
        ax.errorbar(i, mean, yerr=std, color="#3b6ea8", capsize=6)
        ax.scatter(np.full(len(part), i) + np.linspace(-0.15, 0.15, len(part)), part["score"],
                   color="#c0392b", zorder=3, s=18)
        for x, (fold, score) in zip(np.linspace(-0.15, 0.15, len(part)) + i,
                                    part[["fold", "score"]].itertuples(index=False),
                                    strict=True):
            ax.annotate(str(fold), (x, score), textcoords="offset points", xytext=(3, 3),
                        fontsize=7)
    ax.set_xticks(range(len(modes)), [f"{m}\n{scores[scores['mode'] == m]['mean'].iloc[0]:.3f}"
                                      f" ± {scores[scores['mode'] == m]['std'].iloc[0]:.3f}"
                                      for m in modes])
    ax.set_ylim(0, 1)
    ax.set_ylabel("macro F1 (held-out)")
    return _png(fig)


def draw_gate_quality(gq: compute.GateQuality) -> bytes:
    """Scatter of sensor weight vs SNR proxy, coloured by fold, with the fit line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    pts = gq.points
    for fold, part in pts.groupby("fold", sort=True):
        ok = part["correct"].astype(bool)
        ax.scatter(part.loc[ok, "snr_db"], part.loc[ok, "sensor_weight"], s=22,
                   label=f"fold {fold}", marker="o")
        ax.scatter(part.loc[~ok, "snr_db"], part.loc[~ok, "sensor_weight"], s=30,
                   marker="x", color=ax.collections[-1].get_facecolor()[0])
    if np.isfinite(gq.slope):
        xs = np.linspace(pts["snr_db"].min(), pts["snr_db"].max(), 2)
        intercept = pts["sensor_weight"].mean() - gq.slope * pts["snr_db"].mean()
        ax.plot(xs, intercept + gq.slope * xs, color="black", linewidth=1,
                label=f"fit: {gq.slope:+.2e}/dB, r={gq.pearson_r:+.2f}")
    ax.axhline(0.5, color="#c0392b", linestyle="--", linewidth=1)
    ax.set_xlabel("audio SNR proxy (dB, audio_stats.parquet)")
    ax.set_ylabel("sensor weight")
    ax.set_title("o correct, x wrong", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over points
    return _png(fig)


def draw_reliability(tables: dict[str, tuple[pd.DataFrame, float]]) -> bytes:
    """Observed pro frequency vs mean P(pro) per bin, one line per mode."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
    for mode, (table, ece) in tables.items():
        full = table[table["count"] > 0]
        ax.plot(full["mean_predicted"], full["fraction_positive"], marker="o",
                label=f"{mode} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted P(pro)")
    ax.set_ylabel("observed fraction pro")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def write_plots(run: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Compute and draw every plot of ``run`` into ``out_dir`` (default ``RUN/plots``).

    Each PNG is written atomically. A plot whose artifact is absent (e.g. a run without
    a multimodal mode has no ``modality_weights.parquet``) is left out, not faked.

    Returns:
        stem -> path of each PNG written, in :data:`PLOT_NAMES` order.
    """
    run_dir = require_run(run)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    makers = {
        "modality_weights": (MODALITY_WEIGHTS_FILE,
                             lambda: draw_weight_distribution(
                                 compute.weight_distribution(run_dir))),
        "confusion": (PREDICTIONS_FILE,
                      lambda: draw_confusion(compute.confusion_by_mode(run_dir))),
        "fold_variance": (COMPLETE_RESULTS_FILE,
                          lambda: draw_fold_variance(compute.fold_scores(run_dir))),
        "gate_quality": (MODALITY_WEIGHTS_FILE,
                         lambda: draw_gate_quality(compute.gate_vs_quality(run_dir))),
        "reliability": (PREDICTIONS_FILE,
                        lambda: draw_reliability(compute.reliability_by_mode(run_dir))),
    }
    written = {}
    for stem, (needs, make) in makers.items():
        if not (run_dir / needs).is_file():
            continue
        written[stem] = atomic_write_bytes(out / f"{stem}.png", make())
    return written
