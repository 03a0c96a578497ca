"""What every replay needs: the tagged model and baseline, the fold, its takes and labels.

Resolution order: the tag registry (``--registry``, else ``tags.json`` in the given runs
folder or beside the given run) names the release model (``mm-audiofix``, multimodal)
and the baseline (``sensor-v1``, sensor-only). Replays read only artifacts: the runs'
``splits.parquet``, ``predictions.parquet`` and ``complete_results.json``, the model
run's feature index and cache, and ``RUN/onnx/<mode>_fold<K>.onnx``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from guardrails.errors import ArtifactError, BadInputError
from guardrails.replay._features import CachedFeatures, FeatureBatch
from guardrails.replay._model import default_registry, macro_f1, resolve

__all__ = ["Replay", "applies_replay", "best_fold", "held_out_takes", "history_path",
           "open_replay", "recorded", "registry_path"]

_LABELS = ("amateur", "pro")  # profy.schemas.LABELS: class index 0 amateur, 1 pro


def registry_path(run_or_dir: Path, registry: str) -> Path:
    """The registry a replay reads: ``registry`` when given, else the default next to it."""
    return Path(registry) if registry else default_registry(run_or_dir)


def history_path(registry: Path, history: str) -> Path:
    """The history file: ``history`` when given, else ``replay_history.parquet`` beside
    the registry (scheduled replays of the same releases then share one trend)."""
    return Path(history) if history else registry.parent / "replay_history.parquet"


def _table(path: Path) -> pa.Table:
    if not path.is_file():
        raise ArtifactError(path, "is missing")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(path, f"not a readable Parquet file ({exc})") from None


def _json(path: Path) -> Any:
    if not path.is_file():
        raise ArtifactError(path, "is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(path, f"not readable JSON ({exc})") from None


def best_fold(baseline_run: Path, mode: str, folds: tuple[int, ...], metric: str = "macro_f1"
              ) -> tuple[int, float]:
    """The fold (among ``folds``) with the best recorded ``metric`` of ``mode``; ties go to
    the lowest fold number.

    Raises:
        ArtifactError: complete_results.json lacks the mode or the folds.
    """
    path = baseline_run / "complete_results.json"
    results = _json(path)
    try:
        per_fold = results["modes"][mode]["folds"]
        scores = {k: float(per_fold[str(k)][metric]) for k in folds}
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(path, f"no {metric} for mode {mode!r} folds {list(folds)} ({exc})"
                            ) from None
    fold = max(sorted(scores), key=lambda k: scores[k])
    return fold, scores[fold]


def held_out_takes(run_dir: Path, fold: int) -> dict[str, int]:
    """``sample_id -> label index`` of a fold's held-out (role ``test``) takes."""
    path = run_dir / "splits.parquet"
    rows = _table(path).to_pylist()
    out = {r["sample_id"]: _LABELS.index(r["label"]) for r in rows
           if r.get("fold") == fold and r.get("role") == "test" and r.get("label") in _LABELS}
    if not out:
        raise ArtifactError(path, f"fold {fold} has no test take")
    return out


def recorded(run_dir: Path, mode: str, fold: int, sample_ids: tuple[str, ...]
             ) -> dict[str, Any]:
    """Training-time predictions of ``mode``/``fold`` on ``sample_ids`` (that order).

    Returns:
        dict: ``prob_pro`` float64 ``(N,)``, ``pred`` int64 ``(N,)``, ``macro_f1``.

    Raises:
        ArtifactError: a take has no recorded prediction.
    """
    path = run_dir / "predictions.parquet"
    rows = {r["sample_id"]: r for r in _table(path).to_pylist()
            if r.get("mode") == mode and r.get("fold") == fold}
    missing = [s for s in sample_ids if s not in rows]
    if missing:
        raise ArtifactError(path, f"no {mode} fold-{fold} prediction for {len(missing)} "
                                  f"take(s), e.g. {missing[:3]}")
    prob = np.array([float(rows[s]["probability"]) for s in sample_ids])
    pred = np.array([int(rows[s]["prediction"]) for s in sample_ids], dtype=np.int64)
    labels = np.array([int(rows[s]["label"]) for s in sample_ids], dtype=np.int64)
    return {"prob_pro": prob, "pred": pred, "labels": labels,
            "macro_f1": macro_f1(labels, pred)}


@dataclass(frozen=True)
class Replay:
    """A resolved replay: model and baseline tags, fold, takes, labels, RAW features."""

    registry: Path
    model: Any      # profy._tags.TagEntry
    baseline: Any   # profy._tags.TagEntry | None
    fold: int
    baseline_fold_f1: float | None
    batch: FeatureBatch
    labels: np.ndarray  # int64 (N,)
    top_db: float

    def onnx(self, entry: Any | None = None) -> Path:
        """ONNX file of ``entry`` (default: the model) at this fold."""
        return (entry or self.model).onnx_path(self.fold)


def open_replay(run_or_dir: Path, *, registry: str, tag: str, baseline_tag: str,
                fold: int | None = None) -> Replay:
    """Resolve tags (hashes verified), pick the fold, load the fold's held-out takes.

    Args:
        run_or_dir: a runs folder with ``tags.json``, or a run inside one.
        registry: explicit registry path, or ``""`` for the default.
        tag, baseline_tag: the release model and the sensor-only baseline
            (``baseline_tag`` may be ``""``: then ``fold`` must be given).
        fold: replay this fold instead of the baseline's best sensor-only fold.

    Raises:
        BadInputError: unknown tag, changed tagged file, no common fold, or baseline and
            model that do not hold out the same takes on that fold.
        ArtifactError: a missing or unreadable artifact.
    """
    reg = registry_path(run_or_dir, registry)
    if not reg.is_file():
        raise BadInputError(reg, "tag registry not found (pass --registry)")
    model = resolve(reg, tag)
    base = resolve(reg, baseline_tag) if baseline_tag else None
    folds = tuple(k for k in model.folds if base is None or k in base.folds)
    if not folds:
        raise BadInputError(reg, f"tags {tag!r} and {baseline_tag!r} share no fold")
    base_f1 = None
    if fold is None:
        if base is None:
            raise BadInputError(reg, "a replay needs a baseline tag or an explicit fold")
        fold, base_f1 = best_fold(base.run_dir, base.mode, folds)
    elif fold not in folds:
        raise BadInputError(reg, f"fold {fold} is not tagged by both (folds {list(folds)})")
    takes = held_out_takes(model.run_dir, fold)
    if base is not None and base.run_dir != model.run_dir:
        other = held_out_takes(base.run_dir, fold)
        if other != takes:
            raise BadInputError(base.run_dir / "splits.parquet",
                                f"holds out other takes on fold {fold} than {model.run_dir}: "
                                "the two runs are not comparable")
    features = CachedFeatures(model.run_dir / "features" / "feature_index.parquet")
    batch = features.load_batch(list(takes))
    labels = np.array([takes[s] for s in batch.sample_ids], dtype=np.int64)
    return Replay(reg, model, base, fold, base_f1, batch, labels, _top_db(model.run_dir))


def _top_db(run_dir: Path) -> float:
    """``features.top_db`` of the run's config (the log-mel floor), default 80."""
    import yaml

    path = run_dir / "config.yaml"
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return float((cfg.get("features") or {}).get("top_db", 80.0))
    except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(path, f"cannot read features.top_db ({exc})") from None


def applies_replay(ctx: Any, registry: str = "", tag: str = "mm-audiofix") -> str | None:
    """Skip reason unless the registry names ``tag`` and its run has an ``onnx/`` folder."""
    from profy._tags import read_registry, tagged_run_dir
    from profy.errors import ProfyError

    reg = registry_path(ctx.run_dir, registry)
    try:
        tags = read_registry(reg, missing_ok=True)["tags"]
        run = tagged_run_dir(reg, tag, tags[tag]["run"]) if tag in tags else None
    except ProfyError:
        return None  # a broken registry (or a run escaping it) is evidence: let it fail
    if run is None:
        return f"no tag {tag!r} in {reg}"
    # Each reason says what is actually missing: a run that is not where the registry
    # says is a different fix (mount or re-tag) from a run never exported.
    if not run.is_dir():
        return (f"run of tag {tag!r} not found: {reg} names {tags[tag]['run']!r}, "
                f"no folder at {run} (runs folder moved or mounted elsewhere? re-tag it)")
    if not (run / "onnx").is_dir():
        return f"tag {tag!r}: {run} has no onnx/ folder (run `profy export`)"
    return None
