"""Planted recording defects of a synthetic corpus, with their ground truth (issue 20).

Opt-in (``SynthConfig.defects``, the ``<size>-defects`` presets): without it nothing here
touches a take, so the default corpora stay byte-identical. With it:

- :func:`plan_defects` gives exact shares of the clean tagged takes one defect each
  (:data:`profy.data._synth_config.DEFECT_KINDS`) from its own generator, and appends the
  duplicates: extra takes that re-render a clean take under another player's id;
- :func:`apply_audio_defect` damages one take's rendered stereo audio;
- ``planted_defects.csv`` (:data:`PLANTED_DEFECTS_FILE`, beside ``labels.csv``, written
  for every corpus) records per take the defects it carries -- the legacy ones too
  (``lead_silence``, ``cut_zeros``, ``cut_truncated``, ``clip_hard``, ``noisy``) -- the
  true sensor lead and, for a duplicate, the take it copies. No check reads it.

What each planted defect does (rates: :class:`~profy.data._synth_config.DefectRates`):

``dc_offset``        one channel gets a constant 0.015-0.04 (either sign)
``clip_normalised``  driven to a 1.3-2x peak, clipped at +-1, then normalised to 0.4-0.75
``dead_channel``     one channel replaced by -90 dBFS white noise
``false_stereo``     right = left times 0.8-1.25 (a panned mono recording)
``upsampled``        down to 16, 22.05 or 32 kHz and back up (scipy ``resample_poly``)
``dropout``          0.3-0.7 s of digital zeros while the player plays
``sync_offset``      the sensor starts 0.5-1.0 s earlier than usual (lead 0.55-1.3 s)
``duplicate``        gain -6..-1 dB, -70 dBFS noise, first 0-50 ms trimmed; other player id
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np

from profy.data._synth_config import DEFECT_KINDS, DefectRates
from profy.data._synth_events import Events, TakePlan, hex_ids

__all__ = ["PLANTED_COLUMNS", "PLANTED_DEFECTS_FILE", "apply_audio_defect", "planted_csv",
           "plan_defects", "truth_row"]

PLANTED_DEFECTS_FILE = "planted_defects.csv"
PLANTED_COLUMNS = ("playdata_id", "player_id", "defects", "sensor_lead_s", "dup_of", "detail")


def plan_defects(plans: list[TakePlan], rates: DefectRates, seed: int,
                 taken: set[str]) -> list[TakePlan]:
    """Assign the per-take defects and append the duplicate takes.

    Args:
        plans: the corpus plan (:func:`profy.data._synth_events.plan_takes`).
        rates: shares of the corpus per defect.
        seed: the corpus seed (a generator of its own: the plan itself is unchanged).
        taken: ids in use (extended with the duplicates' ids).
    """
    rng = np.random.default_rng([seed, 3])
    clean = [p.index for p in plans if p.tag and not (p.silence or p.short or p.clip)]
    order = [int(i) for i in rng.permutation(clean)]
    assign: dict[int, str] = {}
    pos = 0
    for kind in DEFECT_KINDS:
        if kind == "duplicate":
            continue
        n = round(getattr(rates, kind) * len(plans))
        assign.update({i: kind for i in order[pos:pos + n]})
        pos += n
    sources = order[pos:pos + round(rates.duplicate * len(plans))]
    out = [replace(p, defect=assign.get(p.index, "")) for p in plans]
    players = sorted({(p.player_id, p.tag) for p in plans if p.tag})
    for src, new_id in zip(sources, hex_ids(rng, len(sources), taken), strict=True):
        others = [pl for pl in players if pl[0] != plans[src].player_id]
        player_id, tag = others[int(rng.integers(len(others)))]
        out.append(replace(plans[src], index=len(out), playdata_id=new_id, player_id=player_id,
                           tag=tag, defect="duplicate", dup_of=src))
    return out


def apply_audio_defect(audio: np.ndarray, sr: int, kind: str, events: Events,
                       rng: np.random.Generator) -> np.ndarray:
    """One take's stereo audio `(samples, 2)` float32 with defect ``kind`` applied.

    ``sync_offset`` leaves the audio alone (the sensor carries it); an unknown kind is a
    programming error (ValueError).
    """
    from scipy.signal import resample_poly

    x = audio.copy()
    if kind == "dc_offset":
        x[:, int(rng.integers(2))] += np.float32(rng.choice([-1, 1]) * rng.uniform(0.015, 0.04))
    elif kind == "clip_normalised":
        x *= np.float32(rng.uniform(1.3, 2.0) / max(float(np.abs(x).max()), 1e-9))
        np.clip(x, -1.0, 1.0, out=x)
        x *= np.float32(rng.uniform(0.4, 0.75))  # -8..-2.5 dBFS: under any true-peak limit
    elif kind == "dead_channel":
        x[:, int(rng.integers(2))] = rng.standard_normal(x.shape[0]).astype(np.float32) * \
            np.float32(10 ** (-90 / 20))
    elif kind == "false_stereo":
        x[:, 1] = x[:, 0] * np.float32(10 ** (rng.uniform(-2, 2) / 20))
    elif kind == "upsampled":
        low = int(rng.choice([16000, 22050, 32000]))
        g = np.gcd(low, sr)
        down = resample_poly(x.astype(np.float64), low // g, sr // g, axis=0)
        x = resample_poly(down, sr // g, low // g, axis=0)[: x.shape[0]].astype(np.float32)
        if x.shape[0] < audio.shape[0]:
            x = np.pad(x, ((0, audio.shape[0] - x.shape[0]), (0, 0)))
    elif kind == "dropout":
        first, last = float(events.onset.min()), float(events.onset.max())
        start = rng.uniform(first + 0.3, max(first + 0.31, last - 0.8))
        length = rng.uniform(0.3, 0.7)
        x[int(start * sr):int((start + length) * sr)] = 0.0
    elif kind == "duplicate":
        trim = int(rng.uniform(0.0, 0.05) * sr)
        x = x[trim:] * np.float32(10 ** (rng.uniform(-6, -1) / 20))  # quieter: no new clips
        x += rng.standard_normal(x.shape).astype(np.float32) * np.float32(10 ** (-70 / 20))
    elif kind != "sync_offset":
        raise ValueError(f"unknown planted defect {kind!r}")
    return x


def truth_row(plan: TakePlan, *, noisy: bool, sensor_lead_s: float,
              dup_of: str = "") -> dict[str, str]:
    """One ``planted_defects.csv`` row: every defect the take carries.

    ``dup_of`` (the copied take's id) is filled in by the writer, which knows every plan.
    """
    kinds = []
    if plan.silence:
        kinds.append("lead_silence")
    if plan.short:
        kinds.append("cut_zeros" if plan.short == "zeros" else "cut_truncated")
    if plan.clip:
        kinds.append("clip_hard")
    if noisy:
        kinds.append("noisy")
    if plan.defect:
        kinds.append(plan.defect)
    return {"playdata_id": plan.playdata_id, "player_id": plan.player_id,
            "defects": ";".join(kinds), "sensor_lead_s": f"{sensor_lead_s:.6f}",
            "dup_of": dup_of, "detail": plan.silence or plan.short}


def planted_csv(rows: list[dict[str, str]]) -> str:
    """The ``planted_defects.csv`` text, rows sorted by take id."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PLANTED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["playdata_id"]))
    return buf.getvalue()
