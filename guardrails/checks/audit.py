"""Parquet artifact audits against the declared schemas (:mod:`profy.contract.schemas`).

Per artifact: the Arrow schema (column names and types, read from the Parquet footer),
then one GX suite: non-null columns, ranges and value sets from ``RANGES``, float
columns finite, the artifact's key unique (one prediction per mode / fold / sample),
fusion weights summing to 1, predictions agreeing with their probabilities, at least
one row. The same suite runs on pandas or, with ``engine="spark"``, on Spark.

Rule ids are ``<column>.<rule>`` (``probability.range``) or ``<topic>.<rule>``
(``key.unique``); a broken value fails its own rule and no other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

import guardrails.checks._gx_frames as frames
from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks._gx import Rule, RuleOutcome, read_frame, validate
from guardrails.errors import BadInputError
from profy.contract import schemas as S
from profy.contract.layout import (
    AUDIO_STATS_FILE,
    EPOCHS_FILE,
    FEATURE_INDEX_FILE,
    FEATURES_DIR,
    GATE_LOG_FILE,
    MANIFEST_FILE,
    MODALITY_WEIGHTS_FILE,
    PREDICTIONS_FILE,
    SPLITS_FILE,
)

__all__ = ["ARTIFACTS", "artifact_of", "audit_frame", "audit_path", "audit_rules",
           "outcomes_result", "schema_outcome"]

# artifact -> (schema, path in a run folder, key columns that must be unique)
ARTIFACTS: dict[str, tuple[pa.Schema, str, tuple[str, ...]]] = {
    "predictions": (S.PREDICTIONS_SCHEMA, PREDICTIONS_FILE, ("mode", "fold", "sample_id")),
    "splits": (S.SPLITS_SCHEMA, SPLITS_FILE, ("fold", "sample_id")),
    "modality_weights": (S.MODALITY_WEIGHTS_SCHEMA, MODALITY_WEIGHTS_FILE,
                         ("fold", "sample_id")),
    "audio_stats": (S.AUDIO_STATS_SCHEMA, AUDIO_STATS_FILE, ("sample_id",)),
    # no key: the class-balanced sampler draws with replacement, so a take may repeat
    "gate_log": (S.GATE_LOG_SCHEMA, GATE_LOG_FILE, ()),
    "epochs": (S.EPOCHS_SCHEMA, EPOCHS_FILE, ("mode", "fold", "epoch")),
    "manifest": (S.MANIFEST_SCHEMA, MANIFEST_FILE, ("sample_id",)),
    "feature_index": (S.FEATURE_INDEX_SCHEMA, f"{FEATURES_DIR}/{FEATURE_INDEX_FILE}",
                      ("sample_id",)),
}
WEIGHT_PAIRS = {"modality_weights": ("sensor_weight", "audio_weight"),
                "gate_log": ("sensor_weight", "audio_weight")}
WEIGHT_SUM_TOL = 1e-6  # softmax outputs in float32, stored as float64
FINITE_BOUND = 1e300  # "between +-1e300" rejects inf on both engines and NaN on Spark


def artifact_of(path: Path, schema: pa.Schema) -> str:
    """Which artifact a Parquet file holds: its ``profy_artifact`` metadata, else its name."""
    meta = schema.metadata or {}
    name = meta.get(b"profy_artifact", b"").decode() or path.stem
    if name not in ARTIFACTS:
        raise BadInputError(path, f"not a known run artifact (known: {', '.join(ARTIFACTS)})")
    return name


def _between(col: str, lo, hi, **kw):
    return lambda gxe: gxe.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi,
                                                         **kw)


def _range_kind(rng) -> str | None:
    """``RANGES`` entries: ``(lo, hi)`` numbers (``None`` = open) or a tuple of allowed values."""
    if rng is None:
        return None
    numeric = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                  for v in rng)
    return "range" if len(rng) == 2 and numeric else "set"


def audit_rules(artifact: str, columns: Sequence[str]) -> list[Rule]:
    """The GX rules of ``artifact`` whose columns are all present in ``columns``."""
    schema, _, key = ARTIFACTS[artifact]
    ranges = S.RANGES.get(artifact, {})
    present = set(columns)
    rules = [Rule("rows.nonempty", lambda gxe: gxe.ExpectTableRowCountToBeBetween(min_value=1),
                  "at least one row")]
    for f in schema:
        if f.name not in present:
            continue
        c = f.name
        if not f.nullable:
            rules.append(Rule(f"{c}.not_null", functools.partial(
                lambda gxe, c: gxe.ExpectColumnValuesToNotBeNull(column=c), c=c),
                f"{c} has no nulls (NaN counts as null on pandas)"))
        rng = ranges.get(c)
        kind = _range_kind(rng)
        bounded = kind == "range" and None not in rng
        if kind == "range":
            lo, hi = rng
            rules.append(Rule(f"{c}.range", _between(c, lo, hi), f"{c} in [{lo}, {hi}]"))
        elif kind == "set":
            values = list(rng)
            rules.append(Rule(f"{c}.in_set", functools.partial(
                lambda gxe, c, v: gxe.ExpectColumnValuesToBeInSet(column=c, value_set=v),
                c=c, v=values), f"{c} in {values}"))
        if pa.types.is_floating(f.type) and not bounded:
            rules.append(Rule(f"{c}.finite", _between(c, -FINITE_BOUND, FINITE_BOUND),
                              f"{c} finite"))
    if key and set(key) <= present:
        rules.append(Rule("key.unique", lambda gxe: (
            gxe.ExpectColumnValuesToBeUnique(column=key[0]) if len(key) == 1
            else gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key))),
            f"one row per {' / '.join(key)}"))
    if artifact in WEIGHT_PAIRS and set(WEIGHT_PAIRS[artifact]) <= present:
        rules.append(Rule("weights.sum_to_one", _between("_weight_sum_error", 0.0, WEIGHT_SUM_TOL),
                          f"{' + '.join(WEIGHT_PAIRS[artifact])} = 1 (tolerance "
                          f"{WEIGHT_SUM_TOL:g})"))
    if artifact == "predictions" and {"probability", "prediction"} <= present:
        rules.append(Rule("prediction.matches_probability", lambda gxe: (
            gxe.ExpectColumnValuesToBeInSet(column="_prediction_agrees", value_set=[True])),
            "prediction = 1 exactly when probability > 0.5 (ties within 1e-6 exempt)"))
    return rules


def _derive(frame, artifact: str, engine: str, present: set[str]):
    if artifact in WEIGHT_PAIRS and set(WEIGHT_PAIRS[artifact]) <= present:
        frame = frames.with_abs_sum_error(frame, engine, WEIGHT_PAIRS[artifact], 1.0,
                                          "_weight_sum_error")
    if artifact == "predictions" and {"probability", "prediction"} <= present:
        if engine == "pandas":
            frame = frame.copy()
            p = frame["probability"]
            frame["_prediction_agrees"] = (((p > 0.5).astype("int64") == frame["prediction"])
                                           | ((p - 0.5).abs() <= 1e-6)).fillna(False)
        else:
            import pyspark.sql.functions as F

            p = F.col("probability")
            agrees = (F.when(p > 0.5, 1).otherwise(0) == F.col("prediction")) | \
                (F.abs(p - 0.5) <= 1e-6)
            frame = frame.withColumn("_prediction_agrees", F.coalesce(agrees, F.lit(False)))
    return frame


def schema_outcome(artifact: str, schema: pa.Schema) -> RuleOutcome:
    """Column names and Arrow types against the declared schema (no GX needed)."""
    declared = ARTIFACTS[artifact][0]
    problems = []
    for f in declared:
        if f.name not in schema.names:
            problems.append(f"missing column {f.name!r} ({f.type})")
        elif not schema.field(f.name).type.equals(f.type):
            problems.append(f"{f.name}: type {schema.field(f.name).type}, declared {f.type}")
    extra = [n for n in schema.names if n not in declared.names]
    problems += [f"undeclared column {n!r}" for n in extra]
    return RuleOutcome("schema.columns", not problems,
                       f"columns and types of schema v{S.SCHEMA_VERSION}",
                       unexpected_count=len(problems), element_count=len(declared),
                       examples=problems)


def audit_frame(frame, artifact: str, schema: pa.Schema, *, engine: str = "pandas",
                report_dir: str | Path | None = None, suite: str | None = None
                ) -> list[RuleOutcome]:
    """Audit one artifact already loaded as a frame (pandas or Spark).

    Args:
        frame: the table's rows.
        artifact: a key of :data:`ARTIFACTS`.
        schema: the table's Arrow schema (from the Parquet footer).
        engine: ``"pandas"`` or ``"spark"``.
        report_dir: where GX keeps its result JSON. (Default: not kept)
        suite: GX suite name. (Default: ``audit.<artifact>``)

    Returns:
        The schema outcome, then one outcome per GX rule.
    """
    present = set(schema.names)
    rules = audit_rules(artifact, schema.names)
    derived = _derive(frame, artifact, engine, present)
    outcomes = validate(derived, rules, suite=suite or f"audit.{artifact}", engine=engine,
                        report_dir=report_dir)
    return [schema_outcome(artifact, schema), *outcomes]


def outcomes_result(name: str, category: str, outcomes: Sequence[RuleOutcome], *,
                    subject: str, rows: int | None = None, **details) -> CheckResult:
    """Fold rule outcomes into one CheckResult: failing rule ids observed, evidence in details."""
    failed = [o.id for o in outcomes if not o.success]
    observed = {"failed_rules": failed, "rules": len(outcomes)}
    if rows is not None:
        observed["rows"] = rows
    if failed:
        first = next(o for o in outcomes if not o.success)
        hint = first.error or (f"{first.unexpected_count} unexpected"
                               if first.unexpected_count is not None else "")
        if first.examples:
            hint += f", e.g. {first.examples[:3]}"
        message = f"{subject}: {len(failed)} rule(s) failed: {', '.join(failed[:5])} ({hint})"
    else:
        message = f"{subject}: all {len(outcomes)} rules pass"
    return CheckResult(name, category, not failed, observed=observed,
                       expected="every rule passes", message=message,
                       details={**details, "rules": [o.to_dict() for o in outcomes]})


def audit_path(path: str | Path, *, engine: str = "pandas", report_dir: str | Path | None = None,
               artifact: str | None = None, name: str | None = None) -> CheckResult:
    """Audit one Parquet file; an unreadable file raises ArtifactError naming it."""
    import pyarrow.parquet as pq

    path = Path(path)
    frame = read_frame(path, engine, scratch_dir=None if report_dir is None
                       else Path(report_dir) / "spark")
    schema = pq.read_schema(path)
    artifact = artifact or artifact_of(path, schema)
    rows = pq.read_metadata(path).num_rows
    outcomes = audit_frame(frame, artifact, schema, engine=engine, report_dir=report_dir,
                           suite=name or f"audit.{artifact}")
    return outcomes_result(name or f"audit.{artifact}", "audit", outcomes,
                           subject=path.name, rows=rows, path=str(path), artifact=artifact,
                           engine=engine)


def _make_check(artifact: str):
    rel = ARTIFACTS[artifact][1]

    def check(ctx: RunContext) -> CheckResult:
        return audit_path(ctx.path(rel), engine=ctx.engine, report_dir=ctx.report_dir,
                          artifact=artifact)

    check.__doc__ = f"{rel}: schema v{S.SCHEMA_VERSION} columns/types, nulls, ranges, key, sums"
    return check


for _artifact in ARTIFACTS:
    register(f"audit.{_artifact}", category="audit")(_make_check(_artifact))
