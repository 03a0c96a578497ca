"""The synthetic corpus's knobs: :class:`SynthConfig`, its size presets and planted defects.

A leaf module (numpy-free, imports nothing of ``profy.data``), so that the planner
(:mod:`profy.data._synth_events`), the renderer and the writer (:mod:`profy.data._synth`)
all import it and none imports another back.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from profy.errors import ConfigError

__all__ = ["CUES", "DEFECT_KINDS", "FLAGGED_BY", "SIZES", "DefectRates", "SynthConfig"]

CUES = ("timing", "legato", "press", "brightness", "loudness")

# Recording defects planted on request (``--size <size>-defects``), each on a share of
# the takes; a take gets at most one, and none on a take with a legacy defect (silence,
# short or clipped audio), so each defect's ground truth is unambiguous.
DEFECT_KINDS = ("dc_offset", "clip_normalised", "dead_channel", "false_stereo", "upsampled",
                "dropout", "sync_offset", "duplicate")

# The ground truth the recording checks are measured against: each data-quality rule
# (guardrails' ``data.recording`` rule ids, and ``data.sync``) with the planted defects
# (``planted_defects.csv`` kinds) that must break it. Used by the tests and the benchmark.
FLAGGED_BY: dict[str, frozenset[str]] = {
    "dc_offset.bounds": frozenset({"dc_offset"}),
    "true_peak.max": frozenset({"clip_hard"}),
    "clip_runs.max": frozenset({"clip_hard", "clip_normalised"}),
    "channel_balance.min": frozenset({"dead_channel"}),
    "stereo_residual.min": frozenset({"false_stereo"}),
    "bandwidth.min": frozenset({"upsampled"}),
    "noise_floor.max": frozenset({"noisy"}),
    "lead_silence.max": frozenset({"lead_silence"}),
    "dropout.max": frozenset({"dropout", "cut_zeros", "cut_truncated"}),
    "sync": frozenset({"sync_offset"}),
}


@dataclass(frozen=True)
class DefectRates:
    """Share of takes that get each planted defect (see :mod:`profy.data._synth_defects`).

    ``duplicate`` adds that share of *extra* takes: copies of a clean take (gain change,
    a little noise, a trimmed start) filed under another player's id.
    """

    dc_offset: float = 0.03
    clip_normalised: float = 0.03
    dead_channel: float = 0.03
    false_stereo: float = 0.03
    upsampled: float = 0.03
    dropout: float = 0.03
    sync_offset: float = 0.03
    duplicate: float = 0.02

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"DefectRates: {f.name} must be in [0, 1], got {value}")
        if sum(getattr(self, k) for k in DEFECT_KINDS if k != "duplicate") > 0.8:
            raise ConfigError("DefectRates: the per-take shares must sum to <= 0.8")


@dataclass(frozen=True)
class SynthConfig:
    """Shape, recording defects and difficulty of a synthetic corpus.

    The ``*_effect`` knobs are per-take Cohen's d between pro and amateur of one
    latent cue (see the module docstring); 0 removes the cue, larger is easier.
    """

    n_players: int  # tagged players; the real corpus has 73
    takes_per_player: tuple[int, int]  # (min, max) takes of one player
    pro_fraction: float = 40 / 73  # real corpus: 40 pro, 33 amateur players
    full_set_prob: float = 0.9  # most real players recorded the full set (1,083/73 = 14.8)
    duration_s: tuple[float, float] = (6.0, 11.0)  # real takes last ~6-11 s
    audio_sample_rate: int = 44100  # the real recorder's rate
    sensor_rate_hz: float = 1000.0  # the real key logger's nominal rate
    untagged_fraction: float = 0.015  # share of extra takes (so ~of rows) with empty player_tag
    ratings_per_take: tuple[int, int] = (3, 53)  # raters per take in the real label file
    ratings_scale: float = 2.5  # median extra ratings above the minimum (~6 rows/take)
    n_raters: int = 60  # distinct user_ids; must be >= the most ratings a take gets
    hands_together_fraction: float = 0.5  # takes played hands together, an octave apart
    silence_fraction: float = 0.06  # takes with seconds of leading/trailing silence
    short_fraction: float = 0.04  # takes whose audio stops after ~2-3 s
    clip_fraction: float = 0.03  # takes driven into clipping (samples hit +-1)
    noisy_fraction: float = 0.1  # takes with loud room noise (SNR ~5-15 dB instead of ~25-40)
    timing_effect: float = 0.3  # shared cue: kept weak so the modalities stay complementary
    legato_effect: float = 1.4  # sensor: overlap of a released key with the next onset
    press_effect: float = 1.0  # sensor: press speed/shape and hold wobble
    brightness_effect: float = 1.5  # audio: upper partials and >4 kHz attack transient
    loudness_effect: float = 1.5  # audio: absolute level; the sensor saturates before it
    player_sd: float = 0.5  # between-player spread of a cue (same players in a fold)
    take_sd: float = 0.87  # take-to-take spread; dominates so fold scores stay stable
    defects: DefectRates | None = None  # planted recording defects; None: none (default)

    def __post_init__(self) -> None:
        lo, hi = self.takes_per_player
        checks = [
            (self.n_players >= 2, f"n_players must be >= 2, got {self.n_players}"),
            (1 <= lo <= hi, f"takes_per_player must be 1 <= min <= max, got {(lo, hi)}"),
            (0.0 < self.pro_fraction < 1.0,
             f"pro_fraction must be in (0, 1), got {self.pro_fraction}"),
            (3.0 <= self.duration_s[0] <= self.duration_s[1] <= 15.0,
             f"duration_s must be 3 <= min <= max <= 15, got {self.duration_s}"),
            (1 <= self.ratings_per_take[0] <= self.ratings_per_take[1] <= self.n_raters,
             f"ratings_per_take must be 1 <= min <= max <= n_raters ({self.n_raters}), "
             f"got {self.ratings_per_take}"),
            (self.audio_sample_rate >= 16000 and self.sensor_rate_hz > 0,
             f"audio_sample_rate must be >= 16000 and sensor_rate_hz > 0, got "
             f"{self.audio_sample_rate}, {self.sensor_rate_hz}"),
            (self.silence_fraction + self.short_fraction <= 1.0,
             "silence_fraction + short_fraction must be <= 1"),
        ]
        for name in ("full_set_prob", "untagged_fraction", "hands_together_fraction",
                     "silence_fraction", "short_fraction", "clip_fraction", "noisy_fraction"):
            value = getattr(self, name)
            checks.append((0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}"))
        for name in [f"{cue}_effect" for cue in CUES] + ["player_sd", "take_sd"]:
            value = getattr(self, name)
            checks.append((value >= 0.0, f"{name} must be >= 0, got {value}"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"SynthConfig: {message}")


# One difficulty setting for every size: sizes change only the amount of data.
SIZES: dict[str, SynthConfig] = {
    "tiny": SynthConfig(n_players=6, takes_per_player=(2, 3), duration_s=(6.0, 7.0),
                        ratings_per_take=(3, 6), n_raters=12, untagged_fraction=0.08,
                        silence_fraction=0.1, short_fraction=0.1, clip_fraction=0.1),
    "small": SynthConfig(n_players=30, takes_per_player=(6, 8), ratings_per_take=(3, 20)),
    # ~2x small: ~155 held-out takes per fold, so fold-to-fold F1 noise (~sqrt(p(1-p)/n)
    # plus player clustering) shrinks by ~1.4; too slow for the demo's 3-minute budget.
    "medium": SynthConfig(n_players=48, takes_per_player=(8, 10), ratings_per_take=(3, 20)),
    "full": SynthConfig(n_players=73, takes_per_player=(10, 15)),
}
# The same corpora with planted defects and a planted_defects.csv ground truth (issue 20).
SIZES.update({f"{name}-defects": replace(cfg, defects=DefectRates())
              for name, cfg in list(SIZES.items())})
