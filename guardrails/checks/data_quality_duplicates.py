"""Leakage guard (issue 20): near-duplicate takes across players or across a fold's split.

A take uploaded twice under two player ids defeats player-wise cross-validation: the
model is tested on a recording it trained on. ``data.duplicates`` matches every take's
audio fingerprint (``audio_stats.parquet`` ``fingerprint``, Haitsma-Kalker words from
:mod:`profy.contract.fingerprint`), lists every near-duplicate pair, and fails when a pair
sits under different player ids or on both sides of any fold's split
(``splits.parquet``). A pair under one player on one side is listed and passes.

The pairs become a small frame checked by GX (``pair`` names both takes), so the failing
pairs appear in GX's results and Data Docs as well as in ``details["pairs"]``.
"""

from __future__ import annotations

from typing import Any

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.checks._gx import Rule, to_engine, validate
from guardrails.checks.audit import outcomes_result
from profy.contract.layout import AUDIO_STATS_FILE, SPLITS_FILE

__all__ = ["duplicate_pairs", "duplicates", "duplicates_rules"]


def duplicate_pairs(stats, splits, *, max_ber: float) -> list[dict[str, Any]]:
    """Near-duplicate pairs with where they sit.

    Args:
        stats: ``audio_stats`` pyarrow table (``sample_id``, ``fingerprint``).
        splits: ``splits`` pyarrow table (``sample_id``, ``player_id``, ``fold``, ``role``).
        max_ber: the largest bit error rate of a near-duplicate.

    Returns:
        One dict per pair: ``a``, ``b``, ``ber``, ``player_a``, ``player_b``,
        ``cross_player`` and ``cross_fold`` (in some fold one is ``test`` and the other
        not), sorted by ``(a, b)``.
    """
    from profy.contract.fingerprint import from_bytes, near_duplicates

    prints = {sid: from_bytes(fp) for sid, fp in zip(stats.column("sample_id").to_pylist(),
                                                      stats.column("fingerprint").to_pylist(),
                                                      strict=True) if fp is not None}
    player: dict[str, str] = {}
    roles: dict[str, dict[int, str]] = {}
    for row in splits.select(["sample_id", "player_id", "fold", "role"]).to_pylist():
        player[row["sample_id"]] = row["player_id"]
        roles.setdefault(row["sample_id"], {})[int(row["fold"])] = row["role"]
    out = []
    for pair in near_duplicates(prints, max_ber=max_ber):
        pa_, pb_ = player.get(pair.a), player.get(pair.b)
        ra, rb = roles.get(pair.a, {}), roles.get(pair.b, {})
        cross_fold = any((ra[f] == "test") != (rb[f] == "test") for f in ra.keys() & rb.keys())
        out.append({"pair": f"{pair.a}|{pair.b}", "a": pair.a, "b": pair.b,
                    "ber": round(pair.ber, 4), "player_a": pa_, "player_b": pb_,
                    "cross_player": pa_ is not None and pb_ is not None and pa_ != pb_,
                    "cross_fold": cross_fold})
    return out


def duplicates_rules() -> list[Rule]:
    """GX rules on the pair frame: no pair across players, none across a fold's split."""
    return [
        Rule("pair.same_player", lambda gxe: gxe.ExpectColumnValuesToBeInSet(
            column="cross_player", value_set=[False]),
            "no near-duplicate takes under different player ids"),
        Rule("pair.same_side", lambda gxe: gxe.ExpectColumnValuesToBeInSet(
            column="cross_fold", value_set=[False]),
            "no near-duplicate takes on both sides of a fold's split"),
    ]


@register("data.duplicates", category="data", params={"max_ber": 0.15},
          description="LEAKAGE GUARD: near-duplicate takes (audio fingerprints) under two "
                      "players or on both sides of a fold")
def duplicates(ctx: RunContext, *, max_ber: float) -> CheckResult:
    """Near-duplicate takes across players or folds (``audio_stats`` + ``splits``)."""
    import pandas as pd

    stats = ctx.table(AUDIO_STATS_FILE)
    pairs = duplicate_pairs(stats, ctx.table(SPLITS_FILE), max_ber=float(max_ber))
    columns = ["pair", "a", "b", "ber", "player_a", "player_b", "cross_player", "cross_fold"]
    frame = pd.DataFrame(pairs, columns=columns).astype({"cross_player": bool,
                                                         "cross_fold": bool})
    if frame.empty:  # GX cannot validate a frame without rows: nothing can break a rule
        from guardrails.checks._gx import RuleOutcome

        outcomes = [RuleOutcome(r.id, True, r.description, 0, 0) for r in duplicates_rules()]
    else:
        outcomes = validate(to_engine(frame, ctx.engine, scratch_dir=ctx.report_dir / "spark"),
                            duplicates_rules(), suite="data.duplicates", engine=ctx.engine,
                            report_dir=ctx.report_dir, index_column="pair")
    leaking = [p for p in pairs if p["cross_player"] or p["cross_fold"]]
    return outcomes_result("data.duplicates", "data", outcomes,
                           subject=f"{len(pairs)} near-duplicate pair(s) among {stats.num_rows}"
                                   " takes", path=str(ctx.path(AUDIO_STATS_FILE)),
                           engine=ctx.engine, max_ber=max_ber, pairs=pairs,
                           leaking_pairs=[p["pair"] for p in leaking])
