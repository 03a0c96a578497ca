"""What every replay needs: the model and baseline, the fold, its takes and labels.

Two ways to name the model replayed:

* **the candidate** (``guardrails ci RUN``, the default): RUN's own exported models,
  ``RUN/onnx/multimodal_fold<K>.onnx`` (:func:`candidate_entry`). A release verdict is
  evidence about RUN, so its replays never run another run's files; results and history
  rows carry the run's folder name as their label.
* **a tag** (``guardrails replay``, explicit; the context says so with
  ``ctx.replay_by_tag``): the tag registry (``--registry``, else ``tags.json`` in the
  given runs folder or beside the given run) names the release model (``mm-audiofix``).

Either way the sensor-only baseline (``sensor-v1``) is resolved through the registry
(hashes verified) when a replay compares against it.

Fold choice (no winner's curse, :func:`choose_fold`): among the folds both the model
(exported) and the baseline (tagged) have, the replay takes the one where the baseline
scored best **on validation** (the kept epoch's ``val_macro_f1`` in the baseline run's
``epochs.parquet``; ties go to the lowest fold). Held-out (test) scores are never
consulted: picking the fold where sensor-only scored best on the very takes the replay
then compares on would inflate the baseline by the best-of-k selection bias (about
0.03 F1 for 3 folds of ~80 takes), the size of the gap being judged.

Replays read only artifacts: the runs' ``splits.parquet``, ``predictions.parquet`` and
``epochs.parquet``, the model run's feature index and cache, and
``RUN/onnx/<mode>_fold<K>.onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from guardrails.errors import ArtifactError, BadInputError
from guardrails.gates._metrics import macro_f1
from guardrails.replay._features import CachedFeatures, FeatureBatch
from guardrails.replay._model import default_registry, resolve
from profy.contract.layout import (
    CONFIG_FILE,
    CONFIG_HASH_FILE,
    EPOCHS_FILE,
    FEATURE_INDEX_FILE,
    FEATURES_DIR,
    ONNX_DIR,
    PREDICTIONS_FILE,
    SPLITS_FILE,
    onnx_folds,
)

__all__ = ["CANDIDATE_MODE", "Replay", "applies_candidate", "applies_replay", "by_tag",
           "candidate_entry", "choose_fold", "exported_folds", "held_out_takes",
           "history_path", "open_replay", "recorded", "registry_path", "validation_scores"]

_LABELS = ("amateur", "pro")  # profy.contract.schemas.LABELS: class index 0 amateur, 1 pro
CANDIDATE_MODE = "multimodal"  # the release model a candidate run is judged by


def registry_path(run_or_dir: Path, registry: str) -> Path:
    """The registry a replay reads: ``registry`` when given, else the default next to it."""
    return Path(registry) if registry else default_registry(run_or_dir)


def history_path(registry: Path, history: str) -> Path:
    """The history file: ``history`` when given, else ``replay_history.parquet`` beside
    the registry (scheduled replays of the same releases then share one trend)."""
    return Path(history) if history else registry.parent / "replay_history.parquet"


def by_tag(ctx: Any) -> bool:
    """Whether the replay resolves its model through the tag (``guardrails replay``)
    rather than replaying the run's own exported models (``guardrails ci``)."""
    return bool(getattr(ctx, "replay_by_tag", False))


def _table(path: Path) -> pa.Table:
    if not path.is_file():
        raise ArtifactError(path, "is missing")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(path, f"not a readable Parquet file ({exc})") from None


def exported_folds(run_dir: Path, mode: str = CANDIDATE_MODE) -> tuple[int, ...]:
    """Folds with an exported ``RUN/onnx/<mode>_fold<K>.onnx``, ascending."""
    return onnx_folds(run_dir, mode)


def candidate_entry(run_dir: Path, mode: str = CANDIDATE_MODE):
    """RUN's own exported ``mode`` models as a tag-like entry (label: the run's name).

    Returns:
        profy.contract.tags.TagEntry: ``folds`` are the exported folds; ``files`` is empty (the
        ONNX files are hashed when loaded, and every result names them).

    Raises:
        ArtifactError: the run exports no ``mode`` model.
    """
    from profy.contract.tags import TagEntry

    run_dir = Path(run_dir)
    folds = exported_folds(run_dir, mode)
    if not folds:
        raise ArtifactError(run_dir / ONNX_DIR, f"no {mode}_fold<K>.onnx to replay (run "
                                              f"`profy export {run_dir} --mode {mode}`)")
    hash_file = run_dir / CONFIG_HASH_FILE
    config_hash = hash_file.read_text(encoding="utf-8").strip() if hash_file.is_file() else ""
    return TagEntry(tag=run_dir.name, run_dir=run_dir, mode=mode, folds=folds, files={},
                    config_hash=config_hash, created_at="")


def validation_scores(run_dir: Path, mode: str) -> dict[int, float]:
    """``fold -> val_macro_f1`` of the kept epoch (``best``) of ``mode`` in epochs.parquet.

    Raises:
        ArtifactError: epochs.parquet is missing, unreadable or has no kept epoch of ``mode``.
    """
    path = Path(run_dir) / EPOCHS_FILE
    rows = _table(path).to_pylist()
    try:
        scores = {int(r["fold"]): float(r["val_macro_f1"]) for r in rows
                  if r.get("mode") == mode and r.get("best")}
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(path, f"no fold/val_macro_f1/best columns ({exc})") from None
    if not scores:
        raise ArtifactError(path, f"no kept epoch (best = true) of mode {mode!r}")
    return scores


def choose_fold(baseline: Any, folds: tuple[int, ...]) -> tuple[int, float, str]:
    """The fold to replay: the baseline's best **validation** macro F1 among ``folds``.

    See the module docstring (no held-out score is consulted). Ties go to the lowest fold.

    Returns:
        ``(fold, its validation macro F1, a sentence saying how it was chosen)``.

    Raises:
        ArtifactError: the baseline run's epochs.parquet lacks a fold of ``folds``.
    """
    scores = validation_scores(baseline.run_dir, baseline.mode)
    missing = [k for k in folds if k not in scores]
    if missing:
        raise ArtifactError(Path(baseline.run_dir) / EPOCHS_FILE,
                            f"no kept epoch of {baseline.mode} fold(s) {missing}")
    fold = max(sorted(folds), key=lambda k: scores[k])
    how = (f"fold {fold} chosen by {baseline.tag} validation macro F1 {scores[fold]:.3f} "
           f"(kept epoch, epochs.parquet) among folds {list(folds)}; held-out scores not "
           "consulted")
    return fold, scores[fold], how


def held_out_takes(run_dir: Path, fold: int) -> dict[str, int]:
    """``sample_id -> label index`` of a fold's held-out (role ``test``) takes."""
    path = run_dir / SPLITS_FILE
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
    path = run_dir / PREDICTIONS_FILE
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
    """A resolved replay: model and baseline, fold (and how it was chosen), RAW features.

    Attributes:
        candidate: the model is the judged run's own export (``guardrails ci``), not a tag.
        fold_choice: how the fold was chosen (a sentence for messages and details).
        selection_f1: the baseline's validation macro F1 on the chosen fold, else None.
    """

    registry: Path
    model: Any      # profy.contract.tags.TagEntry (a candidate's: label = run name, files = {})
    baseline: Any   # profy.contract.tags.TagEntry | None
    fold: int
    selection_f1: float | None
    batch: FeatureBatch
    labels: np.ndarray  # int64 (N,)
    top_db: float
    candidate: bool = False
    fold_choice: str = ""

    def onnx(self, entry: Any | None = None) -> Path:
        """ONNX file of ``entry`` (default: the model) at this fold."""
        return (entry or self.model).onnx_path(self.fold)


def open_replay(run_or_dir: Path, *, registry: str, tag: str, baseline_tag: str,
                fold: int | None = None, candidate: bool = False) -> Replay:
    """Resolve model and baseline, pick the fold, load the fold's held-out takes.

    Args:
        run_or_dir: the judged run (``candidate``), or a runs folder with ``tags.json``
            or a run inside one.
        registry: explicit registry path, or ``""`` for the default.
        tag: the release model's tag (ignored when ``candidate``).
        baseline_tag: the sensor-only baseline (``""``: none, then ``fold`` must be given).
        fold: replay this fold instead of choosing one (:func:`choose_fold`).
        candidate: replay ``run_or_dir``'s own exported multimodal models.

    Raises:
        BadInputError: unknown tag, changed tagged file, no common fold, or baseline and
            model that do not hold out the same takes on that fold.
        ArtifactError: a missing or unreadable artifact (no exported model included).
    """
    reg = registry_path(run_or_dir, registry)
    if candidate:
        model = candidate_entry(Path(run_or_dir))
        if baseline_tag and not reg.is_file():
            raise BadInputError(reg, f"tag registry not found: it must name the baseline "
                                     f"{baseline_tag!r} (pass --registry)")
    else:
        if not reg.is_file():
            raise BadInputError(reg, "tag registry not found (pass --registry)")
        model = resolve(reg, tag)
    base = resolve(reg, baseline_tag) if baseline_tag else None
    folds = tuple(k for k in model.folds if base is None or k in base.folds)
    if not folds:
        raise BadInputError(reg, f"{model.tag!r} ({model.mode} folds {list(model.folds)}) "
                                 f"and {baseline_tag!r} (folds {list(base.folds)}) share no fold")
    selection_f1, how = None, ""
    if fold is None:
        if base is None:
            raise BadInputError(reg, "a replay needs a baseline tag or an explicit fold")
        fold, selection_f1, how = choose_fold(base, folds)
    elif fold not in folds:
        raise BadInputError(reg, f"fold {fold} is not in both (folds {list(folds)})")
    else:
        how = f"fold {fold} given explicitly"
    takes = held_out_takes(model.run_dir, fold)
    if base is not None and Path(base.run_dir).resolve() != Path(model.run_dir).resolve():
        other = held_out_takes(base.run_dir, fold)
        if other != takes:
            raise BadInputError(base.run_dir / SPLITS_FILE,
                                f"holds out other takes on fold {fold} than {model.run_dir}: "
                                "the two runs are not comparable")
    features = CachedFeatures(model.run_dir / FEATURES_DIR / FEATURE_INDEX_FILE)
    batch = features.load_batch(list(takes))
    labels = np.array([takes[s] for s in batch.sample_ids], dtype=np.int64)
    return Replay(reg, model, base, fold, selection_f1, batch, labels, _top_db(model.run_dir),
                  candidate=candidate, fold_choice=how)


def _top_db(run_dir: Path) -> float:
    """``features.top_db`` of the run's config (the log-mel floor), default 80."""
    import yaml

    path = run_dir / CONFIG_FILE
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return float((cfg.get("features") or {}).get("top_db", 80.0))
    except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(path, f"cannot read features.top_db ({exc})") from None


def _tag_reason(reg: Path, tag: str, *, need_onnx: bool, role: str = "") -> str | None:
    """Why ``tag`` cannot be used from ``reg`` (missing, run gone, not exported), or None.

    A broken registry (or a run escaping it) is evidence, not a skip: ``None``, so the
    check runs and fails naming it.
    """
    from profy.contract.tags import read_registry, tagged_run_dir
    from profy.errors import ProfyError

    try:
        tags = read_registry(reg, missing_ok=True)["tags"]
        run = tagged_run_dir(reg, tag, tags[tag]["run"]) if tag in tags else None
    except ProfyError:
        return None
    if run is None:
        what = f" ({role})" if role else ""
        how = (f"run `profy tag BASELINE_RUN --mode sensor --tag {tag}`" if role
               else f"run `profy tag RUN --mode multimodal --tag {tag}`")
        return f"no tag {tag!r}{what} in {reg}: {how}"
    # Each reason says what is actually missing: a run that is not where the registry
    # says is a different fix (mount or re-tag) from a run never exported.
    if not run.is_dir():
        return (f"run of tag {tag!r} not found: {reg} names {tags[tag]['run']!r}, "
                f"no folder at {run} (runs folder moved or mounted elsewhere? re-tag it)")
    if need_onnx and not (run / ONNX_DIR).is_dir():
        return f"tag {tag!r}: {run} has no onnx/ folder (run `profy export`)"
    return None


def applies_replay(ctx: Any, registry: str = "", tag: str = "mm-audiofix") -> str | None:
    """Skip reason unless the registry names ``tag`` and its run has an ``onnx/`` folder
    (a tag-resolved replay, ``guardrails replay``)."""
    return _tag_reason(registry_path(ctx.run_dir, registry), tag, need_onnx=True)


def applies_candidate(ctx: Any, params: dict[str, Any], *, needs_baseline: bool
                      ) -> str | None:
    """Skip reason of a replay of the judged run's own models (``guardrails ci``), or None.

    Honours the criteria's own ``registry`` and ``baseline_tag`` (and ``tag`` for a
    tag-resolved context). Every reason names what is missing and the command that
    produces it (a required replay turns it into ``missing evidence: ...``).
    """
    if by_tag(ctx):
        return applies_replay(ctx, params.get("registry", ""), params.get("tag", "mm-audiofix"))
    run = Path(ctx.run_dir)
    if not (run / ONNX_DIR).is_dir():
        return f"no onnx/ in {run}: run `profy export {run}`"
    folds = exported_folds(run, CANDIDATE_MODE)
    if not folds:
        return (f"no {CANDIDATE_MODE} model in {run / 'onnx'}: run `profy export {run} "
                f"--mode {CANDIDATE_MODE}`")
    if not needs_baseline:
        return None
    tag = params.get("baseline_tag", "")
    if not tag:
        return "no baseline_tag in the criteria: set it to the sensor-only baseline's tag"
    reg = registry_path(run, params.get("registry", ""))
    reason = _tag_reason(reg, tag, need_onnx=False, role="the sensor-only baseline")
    if reason is not None:
        return reason
    from profy.contract.tags import read_registry
    from profy.errors import ProfyError

    try:
        tagged = [int(k) for k in read_registry(reg)["tags"][tag]["folds"]]
    except (ProfyError, KeyError, TypeError, ValueError):
        return None  # a broken entry is evidence: the check fails naming it
    if not set(tagged) & set(folds):
        return (f"{run.name} exports {CANDIDATE_MODE} folds {list(folds)}, baseline "
                f"{tag!r} tags folds {tagged}: none in common: run `profy export {run} "
                f"--mode {CANDIDATE_MODE} --fold {tagged[0] if tagged else 0}`")
    return None
