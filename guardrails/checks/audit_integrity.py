"""``audit.integrity``: referential integrity between a run's Parquet artifacts.

- every prediction is a held-out (role ``test``) take of its fold, with the label
  ``splits.parquet`` gives that take, and has audio statistics;
- every held-out take has a prediction in every trained mode (with ``key.unique`` of
  ``audit.predictions``: exactly one per sample / mode / fold);
- every modality-weight row is a multimodal prediction of the same fold and take;
- every take in the splits has audio statistics.

Membership is computed natively (pandas index lookup or a Spark join) into a boolean
column that a GX expectation then checks, so both engines run the same suite.
"""

from __future__ import annotations

import guardrails.checks._gx_frames as frames
from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks._gx import Rule, read_frame, validate
from guardrails.checks.audit import outcomes_result
from profy.contract.schemas import LABELS, MODES

__all__ = ["integrity", "integrity_results"]

_NEEDED = {"predictions": ("mode", "fold", "sample_id", "label"),
           "splits": ("fold", "sample_id", "role", "label"),
           "modality_weights": ("fold", "sample_id"), "audio_stats": ("sample_id",)}


def _flag_rule(rule_id: str, column: str, description: str) -> Rule:
    return Rule(rule_id, lambda gxe: gxe.ExpectColumnValuesToBeInSet(column=column,
                                                                     value_set=[True]),
                description)


def _label_names(frame, engine: str):
    if engine == "pandas":
        frame = frame.copy()
        frame["_label_name"] = frame["label"].map(dict(enumerate(LABELS))).fillna("?")
        return frame
    import pyspark.sql.functions as F

    expr = F.lit("?")
    for i, name in enumerate(LABELS):
        expr = F.when(F.col("label") == i, F.lit(name)).otherwise(expr)
    return frame.withColumn("_label_name", expr)


def _where(frame, engine: str, column: str, value: str):
    if engine == "pandas":
        return frame[frame[column] == value]
    import pyspark.sql.functions as F

    return frame.where(F.col(column) == F.lit(value))


def _modes(ctx) -> list[str]:
    modes = (ctx.config.get("train") or {}).get("modes")
    return [m for m in modes if m in MODES] if isinstance(modes, list) else list(MODES)


@register("audit.integrity", category="audit",
          description="predictions / splits / modality weights / audio stats refer to each other")
def integrity(ctx: RunContext) -> CheckResult:
    """Referential integrity between predictions, splits, modality weights and audio stats."""
    return integrity_results(ctx)


def integrity_results(ctx) -> CheckResult:
    """Run the integrity suites on ``ctx`` (engine and report folder from the context)."""
    engine, scratch = ctx.engine, ctx.report_dir / "spark"
    paths = {n: ctx.path(f"{n}.parquet") for n in
             ("predictions", "splits", "modality_weights", "audio_stats")}
    loaded = {n: read_frame(p, engine, scratch_dir=scratch, columns=_NEEDED[n])
              for n, p in paths.items()}
    splits, audio = loaded["splits"], loaded["audio_stats"]
    test = _where(splits, engine, "role", "test")

    preds = _label_names(loaded["predictions"], engine)
    preds = frames.with_membership(preds, engine, ("fold", "sample_id"), test,
                                   ("fold", "sample_id"), "_in_test")
    preds = frames.with_membership(preds, engine, ("fold", "sample_id", "_label_name"), test,
                                   ("fold", "sample_id", "label"), "_label_ok")
    preds = frames.with_membership(preds, engine, ("sample_id",), audio, ("sample_id",),
                                   "_has_audio")
    outcomes = validate(preds, [
        _flag_rule("predictions.in_heldout", "_in_test",
                   "each prediction is a held-out (test) take of its fold"),
        _flag_rule("predictions.label_matches_splits", "_label_ok",
                   "each prediction's label is the take's label in splits.parquet"),
        _flag_rule("predictions.in_audio_stats", "_has_audio",
                   "each predicted take has audio statistics"),
    ], suite="audit.integrity.predictions", engine=engine, report_dir=ctx.report_dir)

    modes = _modes(ctx)
    for mode in modes:
        test = frames.with_membership(test, engine, ("fold", "sample_id"),
                                      _where(loaded["predictions"], engine, "mode", mode),
                                      ("fold", "sample_id"), f"_pred_{mode}")
    test = frames.with_membership(test, engine, ("sample_id",), audio, ("sample_id",),
                                  "_has_audio")
    outcomes += validate(test, [
        *[_flag_rule(f"heldout.predicted.{m}", f"_pred_{m}",
                     f"every held-out take has a {m} prediction") for m in modes],
        _flag_rule("splits.in_audio_stats", "_has_audio",
                   "every held-out take has audio statistics"),
    ], suite="audit.integrity.heldout", engine=engine, report_dir=ctx.report_dir)

    if "multimodal" in modes:
        weights = frames.with_membership(
            loaded["modality_weights"], engine, ("fold", "sample_id"),
            _where(loaded["predictions"], engine, "mode", "multimodal"),
            ("fold", "sample_id"), "_in_predictions")
        outcomes += validate(weights, [
            _flag_rule("modality_weights.in_predictions", "_in_predictions",
                       "each modality-weight row is a multimodal prediction of that fold"),
        ], suite="audit.integrity.modality_weights", engine=engine, report_dir=ctx.report_dir)
    return outcomes_result("audit.integrity", "audit", outcomes,
                           subject="predictions/splits/weights/audio stats", engine=engine,
                           files={n: str(p) for n, p in paths.items()})
