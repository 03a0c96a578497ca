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

from guardrails.gates._metrics import (
    bootstrap_player_weights,
    macro_f1_from_counts,
    stratified_player_weights,
)
from guardrails.gates._stability import (
    fold_stability,
    pivot_pass_rate,
    rescaled_player_weights,
)
from guardrails.gates.acceptance import delta_rule, f1_rule

__all__ = ["Design", "F1_GATES", "POOLED_GATES", "boot_fold", "boot_pooled", "draw_delta_runs",
           "draw_ece_runs", "draw_f1_runs", "draw_share_runs", "draw_slice_runs", "reliability",
           "simulate_gate", "simulate_pooled_gate"]

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
    elif gate in POOLED_GATES:
        out = simulate_pooled_gate(gate, rng, n_runs, n_fresh, n_boot, design)
        return {k: out[k] for k in ("today", "calibrated", "truth")}
    else:
        raise ValueError(f"no simulation for {gate}")
    return {"today": today, "calibrated": calibrated, "truth": truth}


PIECE_KINDS = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # 8 pieces: 4 scales, 4 arpeggios
SLICE_GATE = {"min_worst_f1": 0.5, "min_samples": 5}
POOLED_GATES = ("gate.slices", "gate.calibration")
ECE_GATE = {"max_ece": 0.15, "n_bins": 10}


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _piece_takes(rng, design: Design, lead, n_pieces: int) -> np.ndarray:
    """Takes per player and piece ``(*lead, K, G, P)``: each take plays a uniform piece."""
    left = _takes(rng, design, lead)
    out = np.empty((*left.shape, n_pieces), dtype=np.int64)
    for j in range(n_pieces - 1):  # a uniform multinomial as a chain of binomials (fast)
        out[..., j] = rng.binomial(left, 1.0 / (n_pieces - j))
        left = left - out[..., j]
    out[..., -1] = left
    return out


def _slots(per_piece, kinds):
    """Piece counts ``(..., P, 4)`` -> slot counts ``(..., P + n_kinds + 1, 4)``."""
    kind = np.stack([per_piece[..., kinds == v, :].sum(axis=-2) for v in np.unique(kinds)],
                    axis=-2)
    return np.concatenate([per_piece, kind, per_piece.sum(axis=-2, keepdims=True)], axis=-2)


def draw_slice_runs(rng, n_runs: int, n_fresh: int, design: Design | None = None,
                    kinds: np.ndarray = PIECE_KINDS):
    """Slot counts of ``gate.slices``: per player of the observed run, and pooled per run.

    Slots as the gate's: every piece, every piece kind, then all takes (the label
    slices). Scenario per run: mean accuracy ``m ~ U(0.5, 0.97)``, players' accuracy
    ~ Beta(mean ``m`` + fold shift ``N(0, tau)``, conc ``c ~ U(3, 40)``), on the logit
    scale a per-piece effect ``N(0, s_p)`` with ``s_p ~ U(0, 0.8)`` (a property of the
    recipe: fresh runs share it); a take is right with its (player, piece) accuracy.

    Returns:
        ``(observed, pooled)``: ``(R, K, G, S + 1, 4)`` per player of run 0 and
        ``(R, 1 + n_fresh, S + 1, 4)`` summed over players (index 0 the observed run).
    """
    design = design or Design()
    lead = (n_runs, 1 + n_fresh)
    k, g = design.shape
    p = kinds.size
    m = rng.uniform(0.5, 0.97, n_runs)
    conc = rng.uniform(3.0, 40.0, n_runs)
    tau = np.where(rng.random(n_runs) < 0.5, 0.0, rng.uniform(0.0, 0.08, n_runs))
    fold_m = _fold_mean(rng, m, tau, (*lead, k))[..., None]
    c = conc[:, None, None, None]
    acc = np.clip(rng.beta(fold_m * c, (1.0 - fold_m) * c, size=(*lead, k, g)), 1e-6,
                  1 - 1e-6)
    effect = rng.standard_normal((n_runs, p)) * rng.uniform(0.0, 0.8, (n_runs, 1))
    acc_p = 1 / (1 + np.exp(-(_logit(acc)[..., None] + effect[:, None, None, None, :])))
    takes = _piece_takes(rng, design, lead, p)
    right = rng.binomial(takes, acc_p)
    pro = design.strata.astype(np.float64)
    # pooled over players: amateur right/wrong -> n00/n01, pro wrong/right -> n10/n11
    cells = [np.einsum("kg,rnkgp->rnp", w, x.astype(np.float64))
             for w, x in ((1 - pro, right), (1 - pro, takes - right), (pro, takes - right),
                          (pro, right))]
    pooled = _slots(np.stack(cells, axis=-1), kinds)
    observed = _slots(_counts(right[:, 0], takes[:, 0], design.strata[..., None]), kinds)
    return observed, pooled


def draw_ece_runs(rng, n_runs: int, n_fresh: int, n_bins: int = 10,
                  design: Design | None = None, chunk: int = 100):
    """Per-player bin sums ``(R, 1 + n_fresh, K, G, 3 n_bins)`` of ``gate.calibration``.

    A take's score is ``z = (2 y - 1) d + u + e`` (``u ~ N(0, s_u)`` the player's,
    ``s_u ~ U(0, 0.6)``; ``e ~ N(0, 1)``); the calibrated P(pro) given ``z`` alone is
    ``sigmoid(2 d z + log odds)``. The model reports ``sigmoid(a (2 d z) + b + b_k)``: 30%
    of the runs calibrated up to the players' effect (``a = 1``, ``b`` = the log odds), the rest
    miscalibrated (``a ~ U(0.3, 3)``, ``b ~ U(-2, 2)``); ``b_k ~ N(0, tau)`` a fold
    shift redrawn by fresh runs. Sums per (bin, player): count, P(pro), label, in the
    gate's order (``calibration_bins``).
    """
    design = design or Design()
    from guardrails.gates._metrics import calibration_bins

    k, g = design.shape
    lo, hi = design.takes
    odds = np.log(design.strata.mean() / (1 - design.strata.mean()))
    out = []
    for start in range(0, n_runs, chunk):
        r = min(chunk, n_runs - start)
        lead = (r, 1 + n_fresh)
        d = rng.uniform(0.3, 1.5, r)
        s_u = rng.uniform(0.0, 0.6, r)
        calib = rng.random(r) < 0.3
        a = np.where(calib, 1.0, rng.uniform(0.3, 3.0, r))
        b = np.where(calib, odds, rng.uniform(-2.0, 2.0, r))
        tau = np.where(rng.random(r) < 0.5, 0.0, rng.uniform(0.0, 0.5, r))
        b_k = rng.standard_normal((*lead, k)) * tau[:, None, None]
        y = np.broadcast_to(design.strata[:, :, None], (*lead, k, g, hi)).astype(np.float64)
        u = rng.standard_normal((*lead, k, g, 1)) * s_u[:, None, None, None, None]
        z = (2 * y - 1) * d[:, None, None, None, None] + u + rng.standard_normal(y.shape)
        logit = (a * 2 * d)[:, None, None, None, None] * z + b[:, None, None, None, None]
        prob = 1 / (1 + np.exp(-(logit + b_k[..., None, None])))
        valid = np.arange(hi) < _takes(rng, design, lead)[..., None]
        ids = calibration_bins(prob, n_bins)
        flat = (np.arange(r * (1 + n_fresh) * k * g).reshape(*lead, k, g, 1) * n_bins
                + ids)[valid]
        size = r * (1 + n_fresh) * k * g * n_bins
        sums = [np.bincount(flat, weights=w[valid], minlength=size)
                for w in (np.ones_like(prob), prob, y)]
        out.append(np.concatenate([x.reshape(*lead, k, g, n_bins) for x in sums], axis=-1))
    return np.concatenate(out)


def boot_pooled(arrays, n_boot: int, rng, strata=None, rescaled: bool = False):
    """Player bootstrap of per-player sums pooled over folds, batched over runs.

    Args:
        arrays: ``(R, K, G, C)``.
        strata: ``(K, G)`` to draw within (fold, label); None draws within folds
            (``gate.slices``/``gate.calibration``'s resampling before issue 19).
        rescaled: Rao-Wu rescaled weights within ``strata``
            (:func:`rescaled_player_weights`, the pooled gates' resampling now).

    Returns:
        ``(R, n_boot, C)`` sums over the resampled players of all folds.
    """
    a = np.asarray(arrays, dtype=np.float64)
    total = np.zeros((a.shape[0], n_boot, a.shape[-1]))
    for k in range(a.shape[1]):
        if rescaled:
            w = rescaled_player_weights(strata[k], n_boot, rng)
        else:
            w = (bootstrap_player_weights(a.shape[2], n_boot, rng) if strata is None
                 else stratified_player_weights(strata[k], n_boot, rng)).astype(np.float64)
        total += np.einsum("bg,rgc->rbc", w, a[:, k])
    return total


def simulate_pooled_gate(gate: str, rng, n_runs: int = 3000, n_fresh: int = 60,
                         n_boot: int = 300, design: Design | None = None,
                         stratified: bool = True):
    """``gate.slices`` / ``gate.calibration``: reported stabilities and true pass rate.

    Returns:
        ``{"today": share of resamples (players drawn within folds) that pass, the
        figure before; "pivot": :func:`pivot_pass_rate` and "calibrated": the gate's
        :func:`bounded_pivot_pass_rate`, both on the gates' resamples (Rao-Wu rescaled,
        within (fold, label) strata; ``stratified=False``: plain, within folds);
        "truth": share of fresh runs that pass; "observed": the run's statistic}``.
    """
    from guardrails.gates._stability import bounded_pivot_pass_rate
    from guardrails.gates.slices import ece_from_sums, worst_f1_from_counts

    design = design or Design()
    strata = design.strata if stratified else None
    if gate == "gate.slices":
        thr, ms = SLICE_GATE["min_worst_f1"], SLICE_GATE["min_samples"]
        observed, pooled = draw_slice_runs(rng, n_runs, n_fresh, design)
        stat = worst_f1_from_counts(pooled, ms)                            # (R, 1 + n)
        per_player = observed.reshape(*observed.shape[:3], -1)

        def boot_of(st, rescaled=False):
            return worst_f1_from_counts(boot_pooled(per_player, n_boot, rng, st, rescaled)
                                        .reshape(n_runs, n_boot, *observed.shape[-2:]), ms)
        higher = True
    elif gate == "gate.calibration":
        thr = ECE_GATE["max_ece"]
        sums = draw_ece_runs(rng, n_runs, n_fresh, ECE_GATE["n_bins"], design)
        stat = ece_from_sums(sums.sum(axis=(2, 3)))

        def boot_of(st, rescaled=False):
            return ece_from_sums(boot_pooled(sums[:, 0], n_boot, rng, st, rescaled))
        higher = False
    else:
        raise ValueError(f"no pooled simulation for {gate}")
    side = (lambda x: x >= thr) if higher else (lambda x: x <= thr)
    # before: players drawn within folds, the share of resamples that pass
    today = side(boot_of(None)).mean(axis=1)
    boot = boot_of(strata, rescaled=stratified)
    return {"today": today, "truth": side(stat[:, 1:]).mean(axis=1),
            "pivot": pivot_pass_rate(stat[:, 0], boot, thr, higher_is_better=higher),
            "calibrated": bounded_pivot_pass_rate(stat[:, 0], boot, thr,
                                                  higher_is_better=higher, bounds=(0.0, 1.0)),
            "observed": stat[:, 0]}


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
    gates = [*F1_GATES, "gate.multimodal_vs_sensor", "gate.sensor_weight_share",
             *POOLED_GATES]
    for name in gates:
        out = simulate_gate(name, np.random.default_rng(7))
        for est in ("today", "calibrated"):
            _table(f"{name}: {est}", reliability(out[est], out["truth"]))
