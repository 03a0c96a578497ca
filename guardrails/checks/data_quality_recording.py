"""Recording checks (issue 20): GX suites on the ``audio_stats.parquet`` recording columns.

``data.recording``: per take, DC offset, true peak, clipping runs (also of audio
normalised after it clipped), dead channel, false stereo, effective bandwidth, noise
floor, lead silence and dropouts (sound missing while a key is down), each for ``mostly``
of the takes. ``data.sync``: the sensor-audio offset is measured (confident) and within
tolerance, and the corpus's offset distribution is reported.

Columns come from :mod:`profy.quality` (``profy features``). Every failing take is named by
its id in full: in GX's own results and Data Docs (``COMPLETE`` format indexed by
``sample_id``) and in the check's ``details["failing_takes"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks._gx import Rule, read_frame, validate
from guardrails.checks.audit import outcomes_result
from profy.contract.layout import AUDIO_STATS_FILE

__all__ = ["RECORDING_RULES", "SYNC_RULES", "RecordingRule", "failing_takes", "recording",
           "recording_rules", "sync", "sync_rules", "sync_summary"]


@dataclass(frozen=True)
class RecordingRule:
    """``low <= column <= high`` per take; bounds are criteria parameter names or numbers."""

    name: str
    column: str
    low: str | float | None
    high: str | float | None
    description: str

    def bounds(self, params: dict) -> tuple[float | None, float | None]:
        """Numeric (low, high) under ``params``; a name ``-x`` is the negated parameter."""
        def resolve(b: str | float | None) -> float | None:
            if isinstance(b, str):
                return -float(params[b[1:]]) if b.startswith("-") else float(params[b])
            return b

        return resolve(self.low), resolve(self.high)


RECORDING_RULES: tuple[RecordingRule, ...] = (
    RecordingRule("dc_offset.bounds", "dc_offset", "-max_dc_offset", "max_dc_offset",
                  "no DC offset on any channel"),
    RecordingRule("true_peak.max", "true_peak_dbtp", None, "max_true_peak_dbtp",
                  "true peak (8x oversampled, BS.1770) below the ceiling"),
    RecordingRule("clip_runs.max", "clip_runs", None, "max_clip_runs",
                  "no clipped runs (>= 3 samples at the take's own max |x|)"),
    RecordingRule("channel_balance.min", "channel_balance_db", "min_channel_balance_db", None,
                  "no dead channel"),
    RecordingRule("stereo_residual.min", "stereo_residual_db", "min_stereo_residual_db", None,
                  "real stereo (not one channel copied to the other)"),
    RecordingRule("bandwidth.min", "bandwidth_hz", "min_bandwidth_hz", None,
                  "full bandwidth (not upsampled from a lower rate)"),
    RecordingRule("noise_floor.max", "noise_floor_db", None, "max_noise_floor_db",
                  "room noise floor below the limit"),
    RecordingRule("lead_silence.max", "lead_silence_s", None, "max_lead_silence_s",
                  "no long silence before the playing starts"),
    RecordingRule("dropout.max", "dropout_s", None, "max_dropout_s",
                  "no sound missing while a key is down (dropout or cut)"),
)

SYNC_RULES: tuple[RecordingRule, ...] = (
    RecordingRule("sync_confidence.min", "sync_confidence", "min_sync_confidence", None,
                  "sensor-audio offset measurable (unambiguous cross-correlation peak)"),
    RecordingRule("sync_offset.bounds", "sync_offset_s", "min_offset_s", "max_offset_s",
                  "sensor-audio offset within tolerance"),
)


def _gx_rule(rule: RecordingRule, params: dict, mostly: float) -> Rule:
    low, high = rule.bounds(params)
    text = (f">= {low}" if high is None else f"<= {high}" if low is None
            else f"in [{low}, {high}]")
    return Rule(rule.name, lambda gxe: gxe.ExpectColumnValuesToBeBetween(
        column=rule.column, min_value=low, max_value=high, mostly=mostly),
        f"{rule.description}: {rule.column} {text} for >= {mostly:.0%} of takes")


def recording_rules(params: dict) -> list[Rule]:
    """The ``data.recording`` suite under the criteria ``params``."""
    return [_gx_rule(r, params, float(params["mostly"])) for r in RECORDING_RULES]


def sync_rules(params: dict) -> list[Rule]:
    """The ``data.sync`` suite: a measured offset (not null, confident) within tolerance."""
    mostly = float(params["mostly"])
    return [Rule("sync_offset.measured", lambda gxe: gxe.ExpectColumnValuesToNotBeNull(
        column="sync_offset_s", mostly=mostly),
        f"sensor-audio offset measured for >= {mostly:.0%} of takes"),
        *(_gx_rule(r, params, mostly) for r in SYNC_RULES)]


def failing_takes(table, rules: Sequence[RecordingRule], params: dict) -> dict[str, list[str]]:
    """Every take breaking each rule (a null or NaN value breaks it), ids in full.

    Args:
        table: a pyarrow table with ``sample_id`` and the rules' columns.
    """
    import math

    ids = table.column("sample_id").to_pylist()
    out: dict[str, list[str]] = {}
    for rule in rules:
        low, high = rule.bounds(params)
        bad = []
        for sid, value in zip(ids, table.column(rule.column).to_pylist(), strict=True):
            if value is None or not math.isfinite(float(value)) or \
                    (low is not None and value < low) or (high is not None and value > high):
                bad.append(sid)
        out[rule.name] = sorted(bad)
    return out


def _with_failing(result: CheckResult, failing: dict[str, list[str]], mostly: float
                  ) -> CheckResult:
    """Say in the message how many takes break each rule, also when ``mostly`` lets the
    suite pass: a green line must not read as if no take were outside a bound (the ids,
    in full, are in ``details.failing_takes``)."""
    counts = [f"{rule} {len(ids)}" for rule, ids in failing.items() if ids]
    if not counts:
        return result
    how = "allowed by" if result.passed else "with"
    return dataclasses.replace(result, message=(
        f"{result.message}; takes outside a bound ({how} mostly={mostly:g}): "
        f"{', '.join(counts)} (ids in details.failing_takes)"))


def _columns(rules: Sequence[RecordingRule]) -> tuple[str, ...]:
    return ("sample_id", *dict.fromkeys(r.column for r in rules))


@register("data.recording", category="data",
          params={"max_dc_offset": 0.01, "max_true_peak_dbtp": -1.0, "max_clip_runs": 0,
                  "min_channel_balance_db": -40.0, "min_stereo_residual_db": -60.0,
                  "min_bandwidth_hz": 20000.0, "max_noise_floor_db": -47.0,
                  "max_lead_silence_s": 2.0, "max_dropout_s": 0.05, "mostly": 0.85},
          description="audio_stats.parquet recording checks: DC, true peak, clipping, dead "
                      "channel, false stereo, bandwidth, noise floor, silence, dropouts")
def recording(ctx: RunContext, **params) -> CheckResult:
    """GX suite on the recording columns of ``audio_stats.parquet``."""
    path = ctx.path(AUDIO_STATS_FILE)
    columns = _columns(RECORDING_RULES)
    frame = read_frame(path, ctx.engine, scratch_dir=ctx.report_dir / "spark", columns=columns)
    outcomes = validate(frame, recording_rules(params), suite="data.recording",
                        engine=ctx.engine, report_dir=ctx.report_dir, index_column="sample_id")
    failing = failing_takes(ctx.table(AUDIO_STATS_FILE).select(list(columns)),
                            RECORDING_RULES, params)
    return _with_failing(outcomes_result("data.recording", "data", outcomes, subject=path.name,
                                         path=str(path), engine=ctx.engine,
                                         thresholds=params, failing_takes=failing),
                         failing, float(params["mostly"]))


def sync_summary(offsets: Sequence[float | None]) -> dict:
    """The corpus's offset distribution: count, unmeasured, quantiles and a histogram (s)."""
    import numpy as np

    vals = np.asarray([v for v in offsets if v is not None and np.isfinite(v)], dtype=float)
    out: dict = {"takes": len(offsets), "measured": int(vals.size),
                 "unmeasured": len(offsets) - int(vals.size)}
    if vals.size:
        qs = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
        out["quantiles_s"] = {f"p{round(q * 100)}": round(float(np.quantile(vals, q)), 4)
                              for q in qs}
        edges = np.round(np.arange(-1.0, 2.01, 0.1), 2)
        counts, _ = np.histogram(np.clip(vals, edges[0], edges[-1]), bins=edges)
        out["histogram_s"] = {f"{lo + 0.0:+.1f}..{hi + 0.0:+.1f}": int(c)
                              for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
                              if c}
    return out


@register("data.sync", category="data",
          params={"min_offset_s": -0.1, "max_offset_s": 0.45, "min_sync_confidence": 0.05,
                  "mostly": 0.95},
          description="audio_stats.parquet: sensor-audio offset measured and within "
                      "tolerance; the corpus's offset distribution")
def sync(ctx: RunContext, **params) -> CheckResult:
    """GX suite on ``sync_offset_s`` / ``sync_confidence`` of ``audio_stats.parquet``."""
    path = ctx.path(AUDIO_STATS_FILE)
    columns = _columns(SYNC_RULES)
    frame = read_frame(path, ctx.engine, scratch_dir=ctx.report_dir / "spark", columns=columns)
    outcomes = validate(frame, sync_rules(params), suite="data.sync", engine=ctx.engine,
                        report_dir=ctx.report_dir, index_column="sample_id")
    table = ctx.table(AUDIO_STATS_FILE).select(list(columns))
    failing = failing_takes(table, SYNC_RULES, params)
    return _with_failing(outcomes_result(
        "data.sync", "data", outcomes, subject=path.name, path=str(path), engine=ctx.engine,
        thresholds=params, failing_takes=failing,
        offsets=sync_summary(table.column("sync_offset_s").to_pylist())),
        failing, float(params["mostly"]))
