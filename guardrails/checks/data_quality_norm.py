"""``data.norm_stats``: the normalization artifacts, and the leakage gate.

For every fold ``K`` of ``splits.parquet``, ``norm_stats/fold_K.json`` must hold finite
per-channel means and standard deviations with std > 0 (``audio_*``: ``n_mels``
channels; ``sensor_*``: 88 keys), a feature-config hash equal to the run's (sha256 of
the canonical JSON of ``config.yaml``'s ``features`` section, as ``profy`` computes it),
and a list of fitted sample ids that are all training takes of fold ``K`` and share
**no** take with that fold's validation or held-out (test) takes. The reference line
``NORM_REF fold=K ... sha256=...`` in ``training.log`` must match the file's bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks._gx import Rule, RuleOutcome, read_frame, to_engine, validate
from guardrails.checks.audit import FINITE_BOUND, outcomes_result
from guardrails.checks.data_quality import SPLITS_COLUMNS
from guardrails.errors import ArtifactError
from profy.contract.layout import SPLITS_FILE
from profy.contract.model_io import N_KEYS  # the depth sensor's channels

__all__ = ["feature_config_hash", "norm_rules", "norm_stats"]

_NORM_REF = re.compile(r"^NORM_REF fold=(\d+) .*?\bsha256=([0-9a-f]{64})", re.MULTILINE)


def feature_config_hash(features: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the ``features`` config (profy's ``config_hash``)."""
    canonical = json.dumps(features, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def norm_rules(train_ids: list[str], heldout_ids: list[str]) -> tuple[list[Rule], list[Rule]]:
    """(channel-table rules, fitted-ids rules) of one fold's suite."""
    channels = [
        Rule("channels.nonempty", lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=1),
             "at least one channel"),
        Rule("mean.finite", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="mean", min_value=-FINITE_BOUND, max_value=FINITE_BOUND), "means finite"),
        Rule("mean.not_null", lambda gxe: gxe.ExpectColumnValuesToNotBeNull(column="mean"),
             "means not NaN"),
        Rule("std.not_null", lambda gxe: gxe.ExpectColumnValuesToNotBeNull(column="std"),
             "stds not NaN"),
        Rule("std.positive_finite", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="std", min_value=0.0, max_value=FINITE_BOUND, strict_min=True),
            "stds finite and > 0"),
    ]
    fitted = [
        Rule("fit.nonempty", lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=1),
             "fitted on at least one take"),
        Rule("fit.unique", lambda gxe: gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
             "each fitted take listed once"),
        Rule("fit.no_heldout_takes", lambda gxe: gxe.ExpectColumnValuesToNotBeInSet(
            column="sample_id", value_set=heldout_ids),
            "LEAKAGE GATE: no fitted take is a val/test take of this fold"),
        Rule("fit.train_takes_only", lambda gxe: gxe.ExpectColumnValuesToBeInSet(
            column="sample_id", value_set=train_ids), "every fitted take is a training take"),
    ]
    return channels, fitted


def _python_rules(stats: dict[str, Any], *, want_hash: str, n_mels: int | None,
                  log_sha: str | None, file_sha: str) -> list[RuleOutcome]:
    out = []
    got = stats.get("feature_config_hash")
    out.append(RuleOutcome("feature_config_hash.matches", got == want_hash,
                           "feature-config hash equals the run's", examples=[] if
                           got == want_hash else [f"file {got}, run {want_hash}"]))
    shapes = []
    for key, want in (("audio_mean", n_mels), ("audio_std", n_mels), ("sensor_mean", N_KEYS),
                      ("sensor_std", N_KEYS)):
        value = stats.get(key)
        if not isinstance(value, list):
            shapes.append(f"{key} missing")
        elif want is not None and len(value) != want:
            shapes.append(f"{key} has {len(value)} channels, expected {want}")
    out.append(RuleOutcome("channels.shape", not shapes, "one mean/std per channel",
                           examples=shapes))
    ids = stats.get("sample_ids")
    n = stats.get("n_samples")
    ok = isinstance(ids, list) and n == len(ids)
    out.append(RuleOutcome("fit.n_samples", ok, "n_samples equals the fitted id list",
                           examples=[] if ok else [f"n_samples={n}, ids={len(ids or [])}"]))
    if log_sha is not None:
        out.append(RuleOutcome("norm_ref.sha256", log_sha == file_sha,
                               "training.log NORM_REF sha256 matches the file",
                               examples=[] if log_sha == file_sha
                               else [f"log {log_sha}, file {file_sha}"]))
    return out


def _numbers(values: Any) -> list[float]:
    out = []
    for v in values if isinstance(values, list) else []:
        # JSON may carry "NaN"/"Infinity" (Python's json writes them); keep them visible
        out.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                   else math.nan)
    return out


def _fold(ctx, fold: int, splits, n_mels, log_refs) -> list[RuleOutcome]:
    import pandas as pd

    rel = f"norm_stats/fold_{fold}.json"
    path = ctx.path(rel)
    stats = ctx.json(rel)
    if not isinstance(stats, dict):
        raise ArtifactError(path, "expected a JSON object")
    mine = splits[splits["fold"] == fold]
    train_ids = sorted(mine.loc[mine["role"] == "train", "sample_id"])
    heldout_ids = sorted(mine.loc[mine["role"] != "train", "sample_id"])
    channel_rows = [{"modality": m, "channel": i, "mean": mu, "std": sd}
                    for m in ("audio", "sensor")
                    for i, (mu, sd) in enumerate(zip(_numbers(stats.get(f"{m}_mean")),
                                                     _numbers(stats.get(f"{m}_std")),
                                                     strict=False))]
    channels = pd.DataFrame(channel_rows, columns=["modality", "channel", "mean", "std"])
    fitted = pd.DataFrame({"sample_id": [str(s) for s in stats.get("sample_ids") or []]},
                          dtype=object)
    channel_rules, fit_rules = norm_rules(train_ids, heldout_ids)
    scratch = ctx.report_dir / "spark"
    outcomes = validate(to_engine(channels, ctx.engine, scratch_dir=scratch), channel_rules,
                        suite=f"data.norm_stats.fold_{fold}.channels", engine=ctx.engine,
                        report_dir=ctx.report_dir)
    if len(fitted) and ctx.engine == "spark":
        fitted_frame = to_engine(fitted, "spark", scratch_dir=scratch)
    else:  # Spark cannot infer a schema for zero rows; GX on pandas reports it the same way
        fitted_frame = fitted
    outcomes += validate(fitted_frame, fit_rules, suite=f"data.norm_stats.fold_{fold}.fit",
                         engine="spark" if fitted_frame is not fitted else "pandas",
                         report_dir=ctx.report_dir)
    file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    outcomes += _python_rules(stats, want_hash=feature_config_hash(ctx.config.get("features")
                                                                   or {}),
                              n_mels=(ctx.config.get("features") or {}).get("n_mels"),
                              log_sha=log_refs.get(fold), file_sha=file_sha)
    return [RuleOutcome(f"fold{fold}.{o.id}", o.success, o.description, o.unexpected_count,
                        o.element_count, o.examples, o.error) for o in outcomes]


def _applies(ctx) -> str | None:
    norm = (ctx.config.get("features") or {}).get("normalization", "global")
    if norm != "global" and not ctx.exists("norm_stats"):
        return f"features.normalization is {norm!r}: no fitted statistics to check"
    return None


@register("data.norm_stats", category="data", applies=_applies,
          description="norm_stats/fold_K.json: finite mean/std, std > 0, feature hash, "
                      "fitted on training takes only (leakage gate)")
def norm_stats(ctx: RunContext) -> CheckResult:
    """GX suites on every fold's normalization statistics, with the leakage gate."""
    splits = read_frame(ctx.path(SPLITS_FILE), "pandas", columns=SPLITS_COLUMNS)
    n_mels = (ctx.config.get("features") or {}).get("n_mels")
    log_refs = ({int(k): sha for k, sha in _NORM_REF.findall(ctx.text("training.log"))}
                if ctx.exists("training.log") else {})
    outcomes: list[RuleOutcome] = []
    folds = sorted(int(f) for f in set(splits["fold"]))
    for fold in folds:
        outcomes += _fold(ctx, fold, splits, n_mels, log_refs)
    leaked = sorted({str(e) for o in outcomes if o.id.endswith("fit.no_heldout_takes")
                     for e in o.examples})
    result = outcomes_result("data.norm_stats", "data", outcomes,
                             subject=f"norm_stats ({len(folds)} folds)",
                             folds=folds, engine=ctx.engine, leaked_sample_ids=leaked)
    return result
