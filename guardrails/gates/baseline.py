"""Baseline comparison: per-mode macro-F1 deltas with a paired player bootstrap.

Method (``baseline.f1_delta``, one result per mode both runs trained):

1. The runs must be comparable: the same corpus (the same take ids), the same label
   set and per-take labels, and the same splits (every held-out take in the same fold).
   Otherwise the paired comparison is refused: one failing ``baseline.f1_delta`` result
   whose message and details (``refused``, ``problems``) say why. It is a result, not an
   exception, so the verdict is still written and ``baseline.drift`` (which exists to
   compare *different* corpora) still reports.
2. Per fold ``k`` the deltas published in ``complete_results.json`` are paired by fold:
   ``F1_cand[k] - F1_base[k]``.
3. The point estimate is ``mean_k F1_cand[k] - mean_k F1_base[k]`` recomputed from both
   runs' ``predictions.parquet`` (held-out takes).
4. Paired bootstrap over takes, resampling PLAYERS: in each of ``n_boot`` resamples
   and inside each fold, the fold's held-out players are drawn with replacement (a
   player's takes are not independent), every take of a drawn player enters with the
   player's multiplicity, and the *same* draw scores both runs (pairing). The
   statistic is recomputed per resample; the interval is the two-sided percentile
   interval holding ``confidence`` of the resampled deltas.
5. Rule ``worse`` (default): fail when the whole interval lies below ``-margin``, i.e.
   the candidate is worse than the baseline by more than ``margin`` at that
   confidence. Rule ``non_inferior`` (stricter): fail unless the whole interval lies
   above ``-margin``.

The generator is seeded from ``--seed`` and the check name: the same seed gives the
same interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import BadInputError
from guardrails.gates._evidence import (
    expected_folds,
    expected_modes,
    gate_rng,
    held_out,
    player_counts,
    resample_fold_f1,
    resample_weights,
    results_f1,
)
from guardrails.gates._metrics import macro_f1_from_counts, percentile_interval

__all__ = ["PairedInterval", "comparability_problems", "paired_bootstrap", "refusal",
           "resolve_baseline"]

RULES = ("worse", "non_inferior")


@dataclass(frozen=True)
class PairedInterval:
    """Point delta (candidate - baseline) of mean-over-folds macro F1 and its interval."""

    delta: float
    low: float
    high: float
    confidence: float
    n_boot: int
    samples: np.ndarray  # (n_boot,) resampled deltas


def paired_bootstrap(cand: list[np.ndarray], base: list[np.ndarray], *, n_boot: int,
                     confidence: float, rng: np.random.Generator) -> PairedInterval:
    """Paired player bootstrap of ``mean_k F1_cand[k] - mean_k F1_base[k]``.

    Args:
        cand: per fold, the candidate's confusion counts per player, ``(G_k, 4)``.
        base: the baseline's, with the same players in the same order per fold.
        n_boot: resamples. confidence: two-sided interval level in (0, 1).
        rng: the generator (seed it for a repeatable interval).
    """
    if len(cand) != len(base) or any(c.shape != b.shape for c, b in zip(cand, base,
                                                                        strict=True)):
        raise ValueError("paired bootstrap needs the same players per fold in both runs")
    point = float(np.mean([macro_f1_from_counts(c.sum(0)) for c in cand])
                  - np.mean([macro_f1_from_counts(b.sum(0)) for b in base]))
    weights = resample_weights(cand, n_boot, rng)
    diffs = (resample_fold_f1(cand, weights).mean(axis=1)
             - resample_fold_f1(base, weights).mean(axis=1))
    low, high = percentile_interval(diffs, confidence)
    return PairedInterval(point, low, high, confidence, n_boot, diffs)


def resolve_baseline(spec: str, candidate_run: str | Path, registry: str | Path | None = None
                     ) -> tuple[Path, str | None]:
    """A baseline folder, or a semantic tag looked up in ``tags.json``.

    Args:
        spec: a run folder, or a tag such as ``mm-audiofix``.
        candidate_run: the run being judged (its parent's ``tags.json`` is the default
            registry, where ``profy tag`` writes it).
        registry: an explicit registry file. (Default: ``RUN/../tags.json``)

    Returns:
        ``(run_dir, tag)``; ``tag`` is None when ``spec`` was a folder.

    Raises:
        BadInputError: not a folder and not a tag of the registry, or a tagged file
            changed since it was tagged.
    """
    if Path(spec).is_dir():
        return Path(spec), None
    from profy._tags import resolve_tag
    from profy.errors import ProfyError

    reg = Path(registry) if registry else Path(candidate_run).resolve().parent / "tags.json"
    if not reg.is_file():
        raise BadInputError(spec, f"neither a run folder nor a tag (no registry at {reg}; "
                                  "pass --registry)")
    try:
        entry = resolve_tag(reg, spec, verify=True)
    except ProfyError as exc:
        raise BadInputError(getattr(exc, "path", None) or reg,
                            getattr(exc, "problem", None) or str(exc)) from None
    if not entry.run_dir.is_dir():
        raise BadInputError(entry.run_dir, f"run of tag {spec!r} is not a folder")
    return entry.run_dir, spec


def _held_out_keys(ctx) -> set[tuple[str, int]]:
    splits = ctx.frame("splits.parquet")
    test = splits[splits["role"] == "test"]
    return set(zip(test["sample_id"].astype(str), test["fold"].astype(int), strict=True))


def comparability_problems(cand, base) -> list[str]:
    """Why two runs cannot be compared (empty when they can)."""
    problems = []
    c_ids = set(cand.frame("splits.parquet")["sample_id"].astype(str))
    b_ids = set(base.frame("splits.parquet")["sample_id"].astype(str))
    if c_ids != b_ids:
        problems.append(f"different corpora: {len(c_ids ^ b_ids)} take(s) in only one run "
                        f"(candidate {len(c_ids)}, baseline {len(b_ids)} takes)")
    c_classes, b_classes = (ctx.json("complete_results.json").get("class_names")
                            if isinstance(ctx.json("complete_results.json"), dict) else None
                            for ctx in (cand, base))
    if c_classes != b_classes:
        problems.append(f"different label sets: {c_classes} vs {b_classes}")
    labels = {}
    for name, ctx in (("candidate", cand), ("baseline", base)):
        s = ctx.frame("splits.parquet").drop_duplicates("sample_id")
        labels[name] = dict(zip(s["sample_id"].astype(str), s["label"].astype(str),
                                strict=True))
    relabelled = [i for i in c_ids & b_ids if labels["candidate"][i] != labels["baseline"][i]]
    if relabelled:
        problems.append(f"different labels for {len(relabelled)} take(s), e.g. "
                        f"{sorted(relabelled)[0]}")
    if not problems:
        moved = _held_out_keys(cand) ^ _held_out_keys(base)
        if moved:
            takes = sorted({sid for sid, _ in moved})
            problems.append(f"different splits: {len(takes)} take(s) held out in another "
                            f"fold, e.g. {takes[0]}")
    if expected_folds(cand) != expected_folds(base):
        problems.append(f"different fold counts: {len(expected_folds(cand))} vs "
                        f"{len(expected_folds(base))}")
    if not set(expected_modes(cand)) & set(expected_modes(base)):
        problems.append("no mode in common")
    return problems


def refusal(cand, base, problems: list[str]) -> CheckResult:
    """The failing ``baseline.f1_delta`` result of runs that cannot be compared."""
    return CheckResult(
        "baseline.f1_delta", "baseline", False, observed="refused: incomparable runs",
        expected="comparable runs (same takes, labels, splits and folds)",
        message=(f"refused: baseline {base.run_dir} cannot be compared with "
                 f"{cand.run_dir}: " + "; ".join(problems)
                 + " (no F1 delta computed; corpus drift is reported by baseline.drift)"),
        details={"refused": True, "problems": list(problems),
                 "baseline_run": str(base.run_dir), "candidate_run": str(cand.run_dir)})


def _applies(ctx) -> str | None:
    return None if ctx.baseline is not None else "no baseline given (--baseline RUN_OR_TAG)"


@register("baseline.f1_delta", category="baseline", applies=_applies,
          params={"margin": 0.02, "confidence": 0.95, "n_boot": 2000, "rule": "worse"},
          choices={"rule": RULES},
          description="per-mode macro-F1 delta vs the baseline, paired by fold, with a "
                      "paired player-bootstrap interval")
def f1_delta(ctx, *, margin: float, confidence: float, n_boot: int,
             rule: str) -> list[CheckResult]:
    """Compare each mode with the baseline run; refuse incomparable runs (a failing result)."""
    base = ctx.baseline
    problems = comparability_problems(ctx, base)
    if problems:
        return [refusal(ctx, base, problems)]
    folds = expected_folds(ctx)
    c_frame, b_frame = held_out(ctx), held_out(base)
    out = []
    for mode in [m for m in expected_modes(ctx) if m in expected_modes(base)]:
        name = f"baseline.f1_delta[{mode}]"
        c_fold, _, _, c_prob = results_f1(ctx, mode)
        b_fold, _, _, b_prob = results_f1(base, mode)
        by_fold = {k: c_fold[k] - b_fold[k] for k in folds if k in c_fold and k in b_fold}
        _, c_counts, cp = player_counts(c_frame, mode, folds)
        _, b_counts, bp = player_counts(b_frame, mode, folds)
        missing = c_prob + b_prob + cp + [f"baseline {p}" for p in bp]
        expected = {"ci_high" if rule == "worse" else "ci_low": f">= {-margin}"}
        if missing:
            out.append(CheckResult(name, "baseline", False, observed=None, expected=expected,
                                   message="; ".join(missing),
                                   details={"mode": mode, "per_fold_delta": by_fold}))
            continue
        iv = paired_bootstrap(c_counts, b_counts, n_boot=n_boot, confidence=confidence,
                              rng=gate_rng(ctx, name))
        bound = iv.high if rule == "worse" else iv.low
        passed = bool(np.isfinite(bound) and bound >= -margin)
        verdict = "not worse than" if passed else "WORSE than"
        message = (f"{mode}: delta {iv.delta:+.4f}, {confidence:.0%} CI "
                   f"[{iv.low:+.4f}, {iv.high:+.4f}] (players resampled within folds, "
                   f"{n_boot} draws): {verdict} the baseline by more than {margin}"
                   if rule == "worse" else
                   f"{mode}: delta {iv.delta:+.4f}, {confidence:.0%} CI [{iv.low:+.4f}, "
                   f"{iv.high:+.4f}]: {'non-inferior' if passed else 'not shown non-inferior'}"
                   f" within margin {margin}")
        details: dict[str, Any] = {
            "mode": mode, "per_fold_delta": by_fold, "delta": iv.delta, "ci": [iv.low, iv.high],
            "confidence": confidence, "n_boot": n_boot, "rule": rule, "margin": margin,
            "method": "paired percentile bootstrap of mean-over-folds macro F1, players "
                      "resampled with replacement within each fold",
            "baseline_run": str(base.run_dir), "seed": ctx.seed}
        out.append(CheckResult(name, "baseline", passed,
                               observed={"delta": round(iv.delta, 4),
                                         "ci": [round(iv.low, 4), round(iv.high, 4)]},
                               expected=expected, message=message, details=details))
    return out
