"""Data-quality suites (Great Expectations) on a run's audio statistics and splits.

``data.audio_stats``: every take has enough non-zero log-mel frames, values are finite,
the SNR proxy and non-silent ratio sit within bounds for ``mostly`` of the takes,
sample ids are unique, and every take the run quarantined by one of these rules
(``quarantine.json``) breaks it under the same thresholds. ``data.splits``: no take
and no player on both sides of any split, every take held out in exactly one fold and
present in every fold. The normalization suite (leakage gate) is in
:mod:`guardrails.checks.data_quality_norm`.
"""

from __future__ import annotations

import functools

import guardrails.checks._gx_frames as frames
from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks._gx import Rule, RuleOutcome, read_frame, validate
from guardrails.checks.audit import FINITE_BOUND, outcomes_result
from profy.contract.layout import AUDIO_STATS_FILE, SPLITS_FILE
from profy.contract.quarantine import QUARANTINE_FILE, TAKE_RULES, TakeRule, still_broken

__all__ = ["SPLITS_COLUMNS", "audio_stats", "audio_stats_rules", "quarantine_outcome", "splits",
           "splits_frame", "splits_rules"]

SPLITS_COLUMNS = ("sample_id", "player_id", "label", "fold", "role")

_FLOATS = ("snr_db", "nonsilent_ratio", "spectral_flatness", "loudness_db", "clipping_ratio",
           "peak", "duration_s")


def _take_rule(rule: TakeRule, params: dict, mostly: float | None = None) -> Rule:
    """The GX form of one per-take rule (:data:`profy.contract.quarantine.TAKE_RULES`)."""
    low, high = rule.bounds(params)
    if rule.column == "finite":
        return Rule(rule.name, lambda gxe: gxe.ExpectColumnValuesToBeInSet(
            column="finite", value_set=[True]), f"{rule.description} (extractor flag)")
    extra = {} if mostly is None else {"mostly": mostly}
    share = "" if mostly is None else f" for >= {mostly:.0%} of takes"
    return Rule(rule.name, lambda gxe: gxe.ExpectColumnValuesToBeBetween(
        column=rule.column, min_value=low, max_value=high, **extra),
        f"{rule.description}: {rule.column} {rule.expected(params)}{share}")


def audio_stats_rules(*, min_nonzero_frames: int, min_snr_db: float, max_snr_db: float,
                      snr_mostly: float, min_nonsilent_ratio: float,
                      nonsilent_mostly: float) -> list[Rule]:
    """The ``audio_stats.parquet`` suite (thresholds from the criteria file).

    The per-take bounds come from :data:`profy.contract.quarantine.TAKE_RULES`, the rules
    ``profy train --skip-bad`` quarantines by; ``*_mostly`` is the share of takes that
    must meet a bound here (quarantine leaves out every take that misses one).
    """
    params = {"min_nonzero_frames": min_nonzero_frames, "min_snr_db": min_snr_db,
              "max_snr_db": max_snr_db, "min_nonsilent_ratio": min_nonsilent_ratio}
    mostly = {"snr_db.bounds": snr_mostly, "nonsilent_ratio.bounds": nonsilent_mostly}
    rules = [
        Rule("rows.nonempty", lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=1),
             "at least one take"),
        Rule("sample_id.unique", lambda gxe: gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
             "one row per take"),
        *(_take_rule(rule, params, mostly.get(rule.name)) for rule in TAKE_RULES),
        Rule("nonzero_frames.le_frames", lambda gxe: gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="frames", column_B="nonzero_frames", or_equal=True),
            "non-zero frames <= model frames"),
        Rule("valid_frames.le_frames", lambda gxe: gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="frames", column_B="valid_frames", or_equal=True),
            "valid (non-silent) frames <= model frames"),
    ]
    for c in _FLOATS:
        rules.append(Rule(f"{c}.not_null", functools.partial(
            lambda gxe, c: gxe.ExpectColumnValuesToNotBeNull(column=c), c=c), f"{c} not NaN"))
        rules.append(Rule(f"{c}.finite", functools.partial(
            lambda gxe, c: gxe.ExpectColumnValuesToBeBetween(
                column=c, min_value=-FINITE_BOUND, max_value=FINITE_BOUND), c=c),
            f"{c} finite"))
    return rules


def quarantine_outcome(ctx, params: dict) -> RuleOutcome | None:
    """Every take the run quarantined by a rule still breaks it under these thresholds.

    A take left out under stricter thresholds than the gate's would be a take dropped
    without cause (a way to make a run look better); ``None`` when the run has no
    ``quarantine.json`` (``data.quarantine`` reports that).
    """
    if not ctx.exists(QUARANTINE_FILE):
        return None
    doc = ctx.json(QUARANTINE_FILE)
    entries = [t for t in doc.get("takes", []) if isinstance(t, dict)]
    unjustified = [t["sample_id"] for t in entries if still_broken(t, params) is False]
    by_rule = [t for t in entries if still_broken(t, params) is not None]
    return RuleOutcome("quarantine.justified", not unjustified,
                       "every take quarantined by a rule breaks it under these thresholds",
                       unexpected_count=len(unjustified), element_count=len(by_rule),
                       examples=unjustified[:5])


@register("data.audio_stats", category="data",
          params={"min_nonzero_frames": 120, "min_snr_db": 0.0, "max_snr_db": 100.0,
                  "snr_mostly": 0.9, "min_nonsilent_ratio": 0.2, "nonsilent_mostly": 0.95},
          description="audio_stats.parquet: >= 120 non-zero frames per take, finite values, "
                      "SNR / non-silent bounds (mostly), unique ids")
def audio_stats(ctx: RunContext, **params) -> CheckResult:
    """GX suite on ``audio_stats.parquet``."""
    path = ctx.path(AUDIO_STATS_FILE)
    frame = read_frame(path, ctx.engine, scratch_dir=ctx.report_dir / "spark",
                       columns=("sample_id", "frames", "nonzero_frames", "valid_frames",
                                "finite", *_FLOATS))
    outcomes = validate(frame, audio_stats_rules(**params), suite="data.audio_stats",
                        engine=ctx.engine, report_dir=ctx.report_dir)
    justified = quarantine_outcome(ctx, params)
    if justified is not None:
        outcomes = [*outcomes, justified]
    return outcomes_result("data.audio_stats", "data", outcomes, subject=path.name,
                           path=str(path), engine=ctx.engine, thresholds=params)


def splits_rules(n_folds: int) -> list[Rule]:
    """The ``splits.parquet`` suite; derived columns are added by :func:`splits_frame`."""
    return [
        Rule("rows.nonempty", lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=1),
             "at least one row"),
        Rule("take.one_role_per_fold", lambda gxe: gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["fold", "sample_id"]), "no take on two sides of a fold's split"),
        Rule("player.one_role_per_fold", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="_player_roles", min_value=1, max_value=1),
            "no player on two sides of a fold's split"),
        Rule("take.held_out_once", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="_test_folds", min_value=1, max_value=1),
            "every take held out (role test) in exactly one fold"),
        Rule("take.in_every_fold", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="_folds", min_value=n_folds, max_value=n_folds),
            f"every take appears in all {n_folds} folds"),
        Rule("fold.range", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="fold", min_value=0, max_value=n_folds - 1), f"fold in [0, {n_folds - 1}]"),
        Rule("label.one_per_take", lambda gxe: gxe.ExpectColumnValuesToBeBetween(
            column="_take_labels", min_value=1, max_value=1), "a take keeps one label"),
    ]


def splits_frame(frame, engine: str):
    """``splits`` plus the group evidence the suite checks (engine-native)."""
    frame = frames.with_group_nunique(frame, engine, ("fold", "player_id"), "role",
                                      "_player_roles")
    frame = frames.with_group_count(frame, engine, ("sample_id",), "role", "test", "_test_folds")
    frame = frames.with_group_nunique(frame, engine, ("sample_id",), "fold", "_folds")
    return frames.with_group_nunique(frame, engine, ("sample_id",), "label", "_take_labels")


def _n_folds(ctx) -> int:
    folds = (ctx.config.get("train") or {}).get("n_folds")
    if isinstance(folds, int) and folds > 0:
        return folds
    return len(set(ctx.table(SPLITS_FILE).column("fold").to_pylist()))


@register("data.splits", category="data",
          description="splits.parquet: no take/player on both sides, each take held out once")
def splits(ctx: RunContext) -> CheckResult:
    """GX suite on ``splits.parquet`` (player-wise cross-validation is intact)."""
    path = ctx.path(SPLITS_FILE)
    frame = splits_frame(read_frame(path, ctx.engine, scratch_dir=ctx.report_dir / "spark",
                                    columns=SPLITS_COLUMNS), ctx.engine)
    n_folds = _n_folds(ctx)
    outcomes = validate(frame, splits_rules(n_folds), suite="data.splits", engine=ctx.engine,
                        report_dir=ctx.report_dir)
    return outcomes_result("data.splits", "data", outcomes, subject=path.name, path=str(path),
                           engine=ctx.engine, n_folds=n_folds)
