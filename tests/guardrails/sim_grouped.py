"""Simulated grouped evaluations with known truth, to check that verdict stability is calibrated.

One simulated *run* is a 3-fold player-wise evaluation at the demo corpus's size: 10
held-out players per fold (16 pro / 14 amateur over the folds, as the ``small`` corpus's
55% pro), 6-8 takes per player. A *scenario* fixes the population: mean per-take accuracy
``m``, the players' spread around it (accuracy ~ Beta with concentration ``c``), and the
fold-to-fold sd ``tau`` of the fold's mean accuracy (0 = homogeneous folds; a fresh run
redraws the fold effects, as a fresh split and training would). Each simulated run
draws its scenario (``m`` spans far below to far above the gate's threshold), one
observed evaluation, and ``n_fresh`` independent fresh evaluations of the same scenario:
the *true pass rate* is the share of fresh evaluations on which the gate passes. The
reported stability is computed from the observed evaluation alone, with the gates' own
functions on arrays (``guardrails.gates``), vectorised over runs.

``python tests/guardrails/sim_grouped.py`` prints the reliability tables (reported
stability bins vs mean true pass rate), today's estimator beside the calibrated one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from guardrails.gates._metrics import macro_f1_from_counts, stratified_player_weights
from guardrails.gates._stability import fold_stability, pivot_pass_rate
from guardrails.gates.acceptance import delta_rule, f1_rule

__all__ = ["Design", "F1_GATES", "boot_fold", "draw_delta_runs", "draw_f1_runs",
           "draw_share_runs", "reliability", "simulate_gate"]

STRATA = np.array([[1] * 6 + [0] * 4, [1] * 5 + [0] * 5, [1] * 5 + [0] * 5])  # (K, G): 1 = pro


@dataclass(frozen=True)
class Design:
    """Evaluation size: per-fold player labels ``strata`` (K, G) and takes per player."""

    strata: np.ndarray = field(default_factory=STRATA.copy)
    takes: tuple[int, int] = (6, 8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.strata.shape


def _takes(rng, design: Design, lead: tuple[int, ...]) -> np.ndarray:
    lo, hi = design.takes
    return rng.integers(lo, hi + 1, size=(*lead, *design.shape))


def _fold_mean(rng, m, tau, lead):
    """Per-run fold mean accuracies ``(R, n, K)``: ``m`` shifted by ``N(0, tau)`` per fold."""
    shift = rng.standard_normal(lead) * tau[:, None, None]
    return np.clip(m[:, None, None] + shift, 0.02, 0.995)


def _counts(correct, takes, strata):
    """Confusion counts (..., K, G, 4) from correct takes; pro: n11/n10, amateur: n00/n01."""
    pro = strata.astype(bool)
    wrong = takes - correct
    out = np.zeros((*correct.shape, 4), dtype=np.int64)
    out[..., 0] = np.where(pro, 0, correct)
    out[..., 1] = np.where(pro, 0, wrong)
    out[..., 2] = np.where(pro, wrong, 0)
    out[..., 3] = np.where(pro, correct, 0)
    return out


def draw_f1_runs(rng, n_runs: int, n_fresh: int, m_range, design: Design | None = None):
    """One mode's per-player counts ``(R, 1 + n_fresh, K, G, 4)``; index 0 is the observed run.

    Scenario per run: ``m ~ U(m_range)``, concentration ``c ~ U(3, 40)``, half of the runs
    homogeneous (``tau = 0``), half with ``tau ~ U(0, 0.08)``.
    """
    design = design or Design()
    m = rng.uniform(*m_range, n_runs)
    conc = rng.uniform(3.0, 40.0, n_runs)
    tau = np.where(rng.random(n_runs) < 0.5, 0.0, rng.uniform(0.0, 0.08, n_runs))
    k, g = design.shape
    fold_m = _fold_mean(rng, m, tau, (n_runs, 1 + n_fresh, k))[..., None]   # (R, n, K, 1)
    c = conc[:, None, None, None]
    acc = rng.beta(fold_m * c, (1.0 - fold_m) * c, size=(n_runs, 1 + n_fresh, k, g))
    takes = _takes(rng, design, (n_runs, 1 + n_fresh))
    return _counts(rng.binomial(takes, acc), takes, design.strata)


def draw_delta_runs(rng, n_runs: int, n_fresh: int, design: Design | None = None):
    """Paired (multimodal, sensor) counts, each ``(R, 1 + n_fresh, K, G, 4)``.

    Per player a latent skill ``z``; logit accuracy of the sensor model ``a + s z``, of
    the multimodal ``a + d_k + s (r z + sqrt(1 - r^2) z')``, with ``d_k`` the fold's gain
    (``d ~ U(-0.4, 1.4)`` on the logit scale, fold sd ``tau`` as in :func:`draw_f1_runs`);
    a take is right for a mode when one shared uniform falls below that mode's accuracy.
    """
    design = design or Design()
    lead = (n_runs, 1 + n_fresh)
    k, g = design.shape
    a = rng.uniform(0.3, 2.0, n_runs)[:, None, None, None]
    s = rng.uniform(0.2, 1.2, n_runs)[:, None, None, None]
    r = rng.uniform(0.3, 0.95, n_runs)[:, None, None, None]
    d = rng.uniform(-0.4, 1.4, n_runs)
    tau = np.where(rng.random(n_runs) < 0.5, 0.0, rng.uniform(0.0, 0.4, n_runs))
    d_k = (d[:, None, None] + rng.standard_normal((*lead, k)) * tau[:, None, None])[..., None]
    z, z2 = rng.standard_normal((2, *lead, k, g))
    acc_s = 1 / (1 + np.exp(-(a + s * z)))
    acc_m = 1 / (1 + np.exp(-(a + d_k + s * (r * z + np.sqrt(1 - r ** 2) * z2))))
    takes = _takes(rng, design, lead)
    lo, hi = np.minimum(acc_s, acc_m), np.maximum(acc_s, acc_m)
    both = rng.binomial(takes, lo)                                    # U < lo: both right
    one = rng.binomial(takes - both, np.clip((hi - lo) / np.maximum(1 - lo, 1e-12), 0, 1))
    right_m = both + np.where(acc_m >= acc_s, one, 0)
    right_s = both + np.where(acc_s > acc_m, one, 0)
    return (_counts(right_m, takes, design.strata), _counts(right_s, takes, design.strata))


def draw_share_runs(rng, n_runs: int, n_fresh: int, design: Design | None = None):
    """Per-player (hits, takes) of the sensor-share gate, each ``(R, 1 + n_fresh, K, G)``.

    A player's share of takes with sensor weight >= 0.5 ~ Beta(mean ``h``, conc ``c``),
    ``h ~ U(0.55, 0.99)``, fold sd of the mean ``tau`` as in :func:`draw_f1_runs`.
    """
    design = design or Design()
    h = rng.uniform(0.55, 0.99, n_runs)
    conc = rng.uniform(3.0, 40.0, n_runs)
    tau = np.where(rng.random(n_runs) < 0.5, 0.0, rng.uniform(0.0, 0.08, n_runs))
    k, g = design.shape
    fold_h = _fold_mean(rng, h, tau, (n_runs, 1 + n_fresh, k))[..., None]
    c = conc[:, None, None, None]
    rate = rng.beta(fold_h * c, (1.0 - fold_h) * c, size=(n_runs, 1 + n_fresh, k, g))
    takes = _takes(rng, design, (n_runs, 1 + n_fresh))
    return rng.binomial(takes, rate), takes


def boot_fold(values_fn, arrays, strata, n_boot: int, rng):
    """Stratified player bootstrap of a per-fold statistic, batched over runs.

    Args:
        values_fn: per-fold statistic of summed per-player arrays ``(..., C)`` -> ``(...)``.
        arrays: per-player arrays ``(R, K, G, C)`` (one or more, summed by the same draw).
        strata: ``(K, G)`` label strata.

    Returns:
        ``(R, n_boot, K)`` (one array per input in ``arrays``, as a list).
    """
    out = [[] for _ in arrays]
    for k in range(strata.shape[0]):
        w = stratified_player_weights(strata[k], n_boot, rng).astype(np.float64)  # (B, G)
        for i, a in enumerate(arrays):
            out[i].append(values_fn(np.einsum("bg,rgc->rbc", w, a[:, k].astype(np.float64))))
    return [np.stack(o, axis=-1) for o in out]


F1_GATES = {  # name: (m range, rule parameters)
    "gate.multimodal_f1": ((0.55, 0.99), {"min_mean": 0.78, "max_std": 0.02}),
    "gate.audio_f1": ((0.45, 0.95), {"min_mean": 0.62, "max_std": 0.04}),
    "mean only (min_mean 0.78)": ((0.55, 0.99), {"min_mean": 0.78, "max_std": np.inf}),
    "std only (max_std 0.04)": ((0.55, 0.99), {"min_mean": -np.inf, "max_std": 0.04}),
}


def simulate_gate(gate: str, rng, n_runs: int = 3000, n_fresh: int = 60, n_boot: int = 300,
                  n_draws: int = 800, design: Design | None = None):
    """Reported stability (today's bootstrap and the calibrated one) and true pass rate.

    Returns:
        ``{"today": (R,), "calibrated": (R,), "truth": (R,)}``.
    """
    design = design or Design()
    st = design.strata
    if gate in F1_GATES:
        m_range, params = F1_GATES[gate]
        rule = f1_rule(**params)
        c = draw_f1_runs(rng, n_runs, n_fresh, m_range, design)
        truth = rule(macro_f1_from_counts(c[:, 1:].sum(axis=-2))).mean(axis=1)
        obs = c[:, 0]
        (samples,) = boot_fold(macro_f1_from_counts, [obs], st, n_boot, rng)
        today = rule(samples).mean(axis=1)
        calibrated = fold_stability(macro_f1_from_counts(obs.sum(axis=-2)), samples, rule,
                                    n_draws, rng)
    elif gate == "gate.multimodal_vs_sensor":
        rule = delta_rule(0.05)
        cm, cs = draw_delta_runs(rng, n_runs, n_fresh, design)
        fold_delta = (macro_f1_from_counts(cm.sum(axis=-2))
                      - macro_f1_from_counts(cs.sum(axis=-2)))
        truth = rule(fold_delta[:, 1:]).mean(axis=1)
        sm, ss = boot_fold(macro_f1_from_counts, [cm[:, 0], cs[:, 0]], st, n_boot, rng)
        today = rule(sm - ss).mean(axis=1)
        calibrated = fold_stability(fold_delta[:, 0], sm - ss, rule, n_draws, rng)
    elif gate == "gate.sensor_weight_share":
        hits, takes = draw_share_runs(rng, n_runs, n_fresh, design)
        share = hits.sum(axis=(-1, -2)) / takes.sum(axis=(-1, -2))
        truth = (share[:, 1:] >= 0.8).mean(axis=1)
        both = np.stack([hits[:, 0], takes[:, 0]], axis=-1)            # (R, K, G, 2)
        (sums,) = boot_fold(lambda a: a, [both], st, n_boot, rng)      # (R, B, 2, K)?
        pooled = sums[..., 0, :].sum(-1) / sums[..., 1, :].sum(-1)      # (R, B)
        today = (pooled >= 0.8).mean(axis=1)
        calibrated = pivot_pass_rate(share[:, 0], pooled, 0.8, higher_is_better=True)
    else:
        raise ValueError(f"no simulation for {gate}")
    return {"today": today, "calibrated": calibrated, "truth": truth}


def reliability(reported, truth, n_bins: int = 10, min_count: int = 40):
    """Rows ``(low, high, n, mean reported, mean true pass rate)`` of non-sparse bins."""
    reported, truth = np.asarray(reported), np.asarray(truth)
    ids = np.minimum((reported * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = ids == b
        if sel.sum() >= min_count:
            rows.append((b / n_bins, (b + 1) / n_bins, int(sel.sum()),
                         float(reported[sel].mean()), float(truth[sel].mean())))
    return rows


def _table(title, rows):
    print(f"\n{title}\n| reported bin | runs | mean reported | mean true pass rate | gap |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for lo, hi, n, rep, tru in rows:
        print(f"| {lo:.1f}-{hi:.1f} | {n} | {rep:.3f} | {tru:.3f} | {tru - rep:+.3f} |")


if __name__ == "__main__":  # pragma: no cover - the printed study
    gates = [*F1_GATES, "gate.multimodal_vs_sensor", "gate.sensor_weight_share"]
    for name in gates:
        out = simulate_gate(name, np.random.default_rng(7))
        for est in ("today", "calibrated"):
            _table(f"{name}: {est}", reliability(out[est], out["truth"]))
