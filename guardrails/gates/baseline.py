"""Baseline comparison: per-mode macro-F1 deltas with a paired player bootstrap.

Method (``baseline.f1_delta``, one result per mode both runs trained):

1. The runs must be comparable: the same corpus (the same take ids), the same label
   set and per-take labels, and the same splits (every held-out take in the same fold).
   Otherwise the paired comparison is refused: one failing ``baseline.f1_delta`` result
   whose message and details (``refused``, ``problems``) say why. It is a result, not an
   exception, so the verdict is still written and ``baseline.drift`` (which exists to
   compare *different* corpora) still reports.
2. Players are paired by id, per fold: a player held out in only one run's predictions
   is dropped from the comparison and counted (``dropped_players``; named in the
   message); a fold with no player in common fails the mode.
3. Per fold ``k`` the delta ``F1_cand[k] - F1_base[k]`` of macro F1 recomputed from both
   runs' ``predictions.parquet`` (the paired players' held-out takes) is listed
   (``per_fold_delta``); the point estimate is their mean,
   ``mean_k F1_cand[k] - mean_k F1_base[k]``.
4. Paired bootstrap over takes, resampling PLAYERS: in each of ``n_boot`` resamples
   and inside each (fold, label) stratum, the stratum's players are drawn with
   replacement (a player's takes are not independent; the folds are stratified by
   label, so every resample keeps each fold's count of pro and amateur players), every
   take of a drawn player enters with the player's multiplicity, and the *same* draw
   scores both runs (pairing by id). The statistic is recomputed per resample; the
   interval is the two-sided percentile interval holding ``confidence`` of the
   resampled deltas. A stratum of fewer than two paired players never varies, so no
   interval is claimed then: the mode fails with "not compared" and the reason.
5. Rule ``worse`` (default): fail when the whole interval lies below ``-margin``, i.e.
   the candidate is shown worse than the baseline by more than ``margin`` at that
   confidence. A pass says only "not shown worse by more than the margin": an
   interval reaching below ``-margin`` passes too, and the message says how far it
   reaches. Rule ``non_inferior`` (stricter, the only rule that claims
   non-inferiority): fail unless the whole interval lies above ``-margin``.

A second opinion, reported beside the interval and never gating: the Nadeau-Bengio
corrected resampled t-test on the per-fold deltas (``details["nadeau_bengio"]``, and
the message). The folds' training sets overlap, so the plain t-test's variance
``s^2 / K`` is too small; the correction uses ``(1/K + n_test/n_train) s^2`` (the
held-out to training take ratio, averaged over folds from ``splits.parquet``; as in
scikit-learn's "Statistical comparison of models using grid search" example), with
``K - 1`` degrees of freedom (``scipy.stats.t``).

The generator is seeded from ``--seed`` and the check name: the same seed gives the
same interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guardrails._context import RunContext
from guardrails._registry import register
from guardrails._result import CheckResult
from guardrails.errors import BadInputError
from guardrails.gates._evidence import (
    MIN_STRATUM_PLAYERS,
    FoldPlayers,
    expected_folds,
    expected_modes,
    fold_players,
    gate_rng,
    held_out,
    pair_folds,
    resample_fold_f1,
    resample_weights,
    thin_strata,
)
from guardrails.gates._metrics import macro_f1_from_counts, percentile_interval
from profy.contract.layout import COMPLETE_RESULTS_FILE, SPLITS_FILE, default_registry

__all__ = ["PairedInterval", "comparability_problems", "delta_message", "nadeau_bengio",
           "paired_bootstrap", "refusal", "resolve_baseline"]

RULES = ("worse", "non_inferior")
_CLAIMS = {("worse", True): "not shown worse by more than the margin",
           ("worse", False): "worse by more than the margin",
           ("non_inferior", True): "non-inferior within the margin",
           ("non_inferior", False): "not shown non-inferior within the margin"}


@dataclass(frozen=True)
class PairedInterval:
    """Point delta (candidate - baseline) of mean-over-folds macro F1 and its interval.

    ``n_players`` players were paired (by id, over all folds); ``dropped`` says which
    were held out in only one run (see :func:`~guardrails.gates._evidence.pair_folds`:
    ``first`` is the candidate, ``second`` the baseline).
    """

    delta: float
    low: float
    high: float
    confidence: float
    n_boot: int
    samples: np.ndarray  # (n_boot,) resampled deltas
    n_players: int = 0
    dropped: dict[str, Any] = field(default_factory=dict)


def paired_bootstrap(cand: list[FoldPlayers], base: list[FoldPlayers], *, n_boot: int,
                     confidence: float, rng: np.random.Generator) -> PairedInterval:
    """Paired player bootstrap of ``mean_k F1_cand[k] - mean_k F1_base[k]``.

    Args:
        cand: per fold, the candidate's held-out players (ids, label strata, counts).
        base: the baseline's, per fold; matched to ``cand`` by player id (order does not
            matter), players held out in only one run are dropped and counted.
        n_boot: resamples. confidence: two-sided interval level in (0, 1).
        rng: the generator (seed it for a repeatable interval).

    Raises:
        ValueError: a fold where the two runs share no player (nothing to pair).
    """
    cand, base, dropped, problems = pair_folds(cand, base)
    if problems:
        raise ValueError("; ".join(problems))
    point = float(np.mean([macro_f1_from_counts(c.counts.sum(0)) for c in cand])
                  - np.mean([macro_f1_from_counts(b.counts.sum(0)) for b in base]))
    weights = resample_weights(cand, n_boot, rng)
    diffs = (resample_fold_f1(cand, weights).mean(axis=1)
             - resample_fold_f1(base, weights).mean(axis=1))
    low, high = percentile_interval(diffs, confidence)
    return PairedInterval(point, low, high, confidence, n_boot, diffs,
                          n_players=int(sum(c.players.size for c in cand)), dropped=dropped)


def nadeau_bengio(fold_deltas, test_train_ratio: float, confidence: float) -> dict[str, Any]:
    """Nadeau-Bengio corrected resampled t-test of per-fold deltas (a second opinion).

    Args:
        fold_deltas: candidate - baseline score per fold, ``(K,)``.
        test_train_ratio: held-out takes / training takes of a fold (mean over folds).
        confidence: two-sided interval level.

    Returns:
        ``{"t", "df", "p_value", "ci", "corrected_sd", "test_train_ratio"}``; ``t`` and
        ``p_value`` are None with fewer than two folds or no spread over folds.
    """
    from scipy import stats

    d = np.asarray(fold_deltas, dtype=np.float64)
    k = d.size
    out: dict[str, Any] = {"method": "Nadeau-Bengio corrected resampled t-test",
                           "test_train_ratio": test_train_ratio, "df": k - 1, "t": None,
                           "p_value": None, "ci": None, "corrected_sd": None}
    if k < 2 or not np.isfinite(d).all():
        return out
    sd = float(np.sqrt((1.0 / k + test_train_ratio) * d.var(ddof=1)))
    out["corrected_sd"] = sd
    half = float(stats.t.ppf(0.5 + confidence / 2.0, k - 1)) * sd
    out["ci"] = [float(d.mean() - half), float(d.mean() + half)]
    if sd > 1e-12:  # folds that agree to rounding have no spread to test against
        t = float(d.mean() / sd)
        out.update(t=t, p_value=float(2.0 * stats.t.sf(abs(t), k - 1)))
    return out


def _test_train_ratio(ctx) -> float:
    splits = ctx.frame(SPLITS_FILE)
    per = splits.groupby(["fold", "role"]).size().unstack(fill_value=0)
    if "test" not in per or "train" not in per or (per["train"] == 0).any():
        return float("nan")
    return float((per["test"] / per["train"]).mean())


def delta_message(mode: str, iv: PairedInterval, *, rule: str, margin: float) -> str:
    """The one-line reading of an interval under ``rule`` (what it shows, nothing more).

    Under ``worse`` a pass is "not shown worse by more than the margin" and, when the
    interval reaches below ``-margin``, says how far; only ``non_inferior`` may call a
    candidate non-inferior.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    head = (f"{mode}: delta {iv.delta:+.4f}, {iv.confidence:.0%} CI [{iv.low:+.4f}, "
            f"{iv.high:+.4f}] (players paired by id, resampled within fold and label, "
            f"{iv.n_boot} draws)")
    if rule == "worse":
        if not (np.isfinite(iv.high) and iv.high >= -margin):
            return f"{head}: WORSE than the baseline by more than {margin}"
        text = (f"{head}: not shown worse than the baseline by more than the margin {margin} "
                f"(rule worse; this is not a claim of non-inferiority")
        if iv.low < -margin:
            text += f": the interval still allows a loss of up to {-iv.low:.4f}"
        return text + ")"
    if np.isfinite(iv.low) and iv.low >= -margin:
        return f"{head}: non-inferior within margin {margin} (whole CI >= {-margin})"
    return f"{head}: not shown non-inferior within margin {margin} (CI reaches {iv.low:+.4f})"


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
    from profy.contract.tags import resolve_tag
    from profy.errors import ProfyError

    reg = Path(registry) if registry else default_registry(candidate_run)
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
    splits = ctx.frame(SPLITS_FILE)
    test = splits[splits["role"] == "test"]
    return set(zip(test["sample_id"].astype(str), test["fold"].astype(int), strict=True))


def comparability_problems(cand, base) -> list[str]:
    """Why two runs cannot be compared (empty when they can)."""
    problems = []
    c_ids = set(cand.frame(SPLITS_FILE)["sample_id"].astype(str))
    b_ids = set(base.frame(SPLITS_FILE)["sample_id"].astype(str))
    if c_ids != b_ids:
        problems.append(f"different corpora: {len(c_ids ^ b_ids)} take(s) in only one run "
                        f"(candidate {len(c_ids)}, baseline {len(b_ids)} takes)")
    c_classes, b_classes = (ctx.json(COMPLETE_RESULTS_FILE).get("class_names")
                            if isinstance(ctx.json(COMPLETE_RESULTS_FILE), dict) else None
                            for ctx in (cand, base))
    if c_classes != b_classes:
        problems.append(f"different label sets: {c_classes} vs {b_classes}")
    labels = {}
    for name, ctx in (("candidate", cand), ("baseline", base)):
        s = ctx.frame(SPLITS_FILE).drop_duplicates("sample_id")
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
def f1_delta(ctx: RunContext, *, margin: float, confidence: float, n_boot: int,
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
        c_players, cp = fold_players(c_frame, mode, folds)
        b_players, bp = fold_players(b_frame, mode, folds)
        c_pair, b_pair, dropped, unpaired = pair_folds(c_players, b_players)
        # per fold: macro F1 of the paired players' held-out takes, candidate - baseline
        by_fold = {k: float(macro_f1_from_counts(c.counts.sum(0))
                            - macro_f1_from_counts(b.counts.sum(0)))
                   for k, c, b in zip(folds, c_pair, b_pair, strict=True) if c.players.size}
        missing = cp + [f"baseline {p}" for p in bp] + [f"{mode}: {p}" for p in unpaired]
        expected = {"ci_high" if rule == "worse" else "ci_low": f">= {-margin}"}
        if missing:
            out.append(CheckResult(name, "baseline", False, observed=None, expected=expected,
                                   message="; ".join(dict.fromkeys(missing)),
                                   details={"mode": mode, "per_fold_delta": by_fold,
                                            "dropped_players": dropped}))
            continue
        thin = thin_strata(c_pair, folds)
        if thin:
            point = float(np.mean(list(by_fold.values())))
            out.append(CheckResult(
                name, "baseline", False, observed={"delta": round(point, 4), "ci": None},
                expected=expected,
                message=(f"{mode}: delta {point:+.4f}, but no {confidence:.0%} interval can be "
                         f"estimated: {'; '.join(thin)} (players are resampled within (fold, "
                         f"label) strata; each needs >= {MIN_STRATUM_PLAYERS} players held "
                         "out in both runs): not compared"),
                details={"mode": mode, "per_fold_delta": by_fold, "delta": point, "ci": None,
                         "ci_estimable": False, "thin_strata": thin, "rule": rule,
                         "margin": margin, "dropped_players": dropped,
                         "baseline_run": str(base.run_dir)}))
            continue
        iv = paired_bootstrap(c_players, b_players, n_boot=n_boot, confidence=confidence,
                              rng=gate_rng(ctx, name))
        bound = iv.high if rule == "worse" else iv.low
        passed = bool(np.isfinite(bound) and bound >= -margin)
        message = delta_message(mode, iv, rule=rule, margin=margin)
        nb = nadeau_bengio([by_fold[k] for k in sorted(by_fold)], _test_train_ratio(ctx),
                           confidence)
        if nb["ci"] is not None:
            message += (f"; second opinion (Nadeau-Bengio corrected t-test over {len(by_fold)} "
                        f"folds, not gating): {confidence:.0%} CI [{nb['ci'][0]:+.4f}, "
                        f"{nb['ci'][1]:+.4f}]"
                        + (f", p = {nb['p_value']:.3f}" if nb["p_value"] is not None else ""))
        n_dropped = dropped["n_first_only"] + dropped["n_second_only"]
        if n_dropped:
            message += (f"; {n_dropped} player(s) held out in only one run dropped from the "
                        f"pairing ({dropped['n_first_only']} candidate-only, "
                        f"{dropped['n_second_only']} baseline-only), {iv.n_players} paired")
        details: dict[str, Any] = {
            "mode": mode, "per_fold_delta": by_fold, "delta": iv.delta, "ci": [iv.low, iv.high],
            "confidence": confidence, "n_boot": n_boot, "rule": rule, "margin": margin,
            "method": "paired percentile bootstrap of mean-over-folds macro F1, players "
                      "paired by id and resampled with replacement within each (fold, label) "
                      "stratum",
            "paired_players": iv.n_players, "dropped_players": dropped, "ci_estimable": True,
            "claims": _CLAIMS[(rule, passed)], "nadeau_bengio": nb,
            "baseline_run": str(base.run_dir), "seed": ctx.seed}
        out.append(CheckResult(name, "baseline", passed,
                               observed={"delta": round(iv.delta, 4),
                                         "ci": [round(iv.low, 4), round(iv.high, 4)]},
                               expected=expected, message=message, details=details))
    return out
