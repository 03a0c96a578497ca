"""What each synthetic player played: the corpus plan and one take's note events.

:func:`plan_takes` draws the players, their latent cue values (see
:mod:`profy.data._synth`) and their takes. For one take, :func:`take_style` turns
the latents into physical playing parameters and :func:`generate_events` plays the
piece with them. Both modalities are then rendered from the same :class:`Events`
(:mod:`profy.data._synth_render`), so sensor and audio always agree on every note.

Latents are in standard units: ``+1`` is one standard deviation more pro-like.
Every mapping below is monotone in its latent, so the direction of each cue is
fixed (pros: steadier timing, more legato, sharper presses, brighter and louder
tones) while its size follows the latent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from profy.contract.model_io import N_KEYS
from profy.contract.schemas import PIECES, piece_kind
from profy.data._synth_config import CUES, SynthConfig

__all__ = ["CUES", "Events", "TakePlan", "TakeStyle", "choose_pieces", "generate_events", "hex_ids",
           "iso_time", "piece_pitches", "plan_takes", "take_style"]

LOWEST_MIDI = 21  # A0, key index 0

# German key names as used in the piece titles: "B" is B-flat, "H" is B natural.
_PITCH_CLASS = {
    "C": 0, "Cis": 1, "Des": 1, "D": 2, "Dis": 3, "Es": 3, "E": 4, "F": 5, "Fis": 6,
    "Ges": 6, "G": 7, "Gis": 8, "As": 8, "A": 9, "Ais": 10, "B": 10, "H": 11,
}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)  # the minor form piano scale exams ask for


@dataclass(frozen=True)
class Events:
    """Notes of one take, sorted by onset (times in seconds from the audio start).

    Attributes:
        keys: ``(notes,)`` int key index 0..87 (MIDI pitch - 21).
        onset: ``(notes,)`` hammer-strike time: the key reaches the key bed here.
        release: ``(notes,)`` time the key starts to come back up.
        velocity: ``(notes,)`` strike strength in (0, 1].
    """

    keys: np.ndarray
    onset: np.ndarray
    release: np.ndarray
    velocity: np.ndarray

    @property
    def end(self) -> float:
        """Time of the last key release."""
        return float(self.release.max()) if self.release.size else 0.0


@dataclass(frozen=True)
class TakeStyle:
    """Physical playing parameters of one take, derived from its latents.

    Timing fields (shared cue: seen by both modalities): ``notes_per_s``, ``drift_sd``,
    ``jitter_s``, ``async_s``, ``p_hesitate``, ``p_wrong``, ``velocity_sd``.
    Sensor-side fields: ``overlap_mean_s``, ``overlap_sd_s`` (legato), ``press_s``,
    ``press_shape``, ``wobble``, ``release_s`` (key-press depth profile).
    Audio-side fields: ``rolloff``, ``attack_gain`` (brightness), ``velocity_mean``
    (absolute loudness, invisible to the sensor above its saturation velocity).
    """

    notes_per_s: float
    drift_sd: float
    jitter_s: float
    async_s: float
    p_hesitate: float
    p_wrong: float
    velocity_sd: float
    overlap_mean_s: float
    overlap_sd_s: float
    press_s: float
    press_shape: float
    wobble: float
    release_s: float
    rolloff: float
    attack_gain: float
    velocity_mean: float


def take_style(latents: dict[str, float], kind: str, rng: np.random.Generator) -> TakeStyle:
    """Map one take's latent cue values to its physical playing parameters.

    Args:
        latents: ``{"timing", "legato", "press", "brightness", "loudness"}`` values in
            standard units (positive = more pro-like).
        kind: ``"scale"`` or ``"arpeggio"`` (arpeggios are played a little slower).
        rng: the take's generator (tempo has a label-free per-take component).

    Returns:
        The take's :class:`TakeStyle`.
    """
    zt, zl, zp = latents["timing"], latents["legato"], latents["press"]
    zb, zv = latents["brightness"], latents["loudness"]
    base_rate = 7.5 if kind == "scale" else 6.0  # notes/s of a fluent exam tempo
    return TakeStyle(
        # Tempo: mostly personal taste (the per-take lognormal), only mildly skill.
        notes_per_s=base_rate * float(np.exp(0.05 * zt + rng.normal(0.0, 0.1))),
        drift_sd=0.025 * float(np.exp(-0.5 * zt)),  # random walk of log-IOI per note
        jitter_s=0.013 * float(np.exp(-0.45 * zt)),  # ~6 ms (steady) .. ~25 ms (uneven)
        async_s=0.006 * float(np.exp(-0.45 * zt)),  # left hand vs right hand spread
        p_hesitate=min(0.25, 0.025 * float(np.exp(-0.9 * zt))),
        p_wrong=min(0.15, 0.010 * float(np.exp(-0.9 * zt))),
        velocity_sd=0.055 * float(np.exp(-0.4 * zt)),  # dynamics evenness
        # Legato: key released this long after the next onset (negative = gap).
        overlap_mean_s=0.015 + 0.022 * zl,
        overlap_sd_s=0.012 * float(np.exp(-0.3 * zl)),
        press_s=0.016 * float(np.exp(-0.3 * zp)),  # key travel time at saturation velocity
        press_shape=float(np.exp(0.25 * zp)),  # >1: late, sharp acceleration into the bed
        wobble=0.0025 * float(np.exp(-0.6 * zp)),  # pressure wobble while holding
        release_s=0.022 * float(np.exp(-0.2 * zp)),
        # Brightness: spectral rolloff of the partials and the >4 kHz hammer transient.
        rolloff=float(np.clip(1.35 - 0.35 * zb, 0.4, 2.6)),
        attack_gain=0.05 * float(np.exp(0.6 * zb)),
        velocity_mean=float(np.clip(0.66 + 0.09 * zv, 0.42, 0.95)),
    )


def piece_pitches(piece: str) -> list[int]:
    """Right-hand MIDI pitches of a piece, up and back down.

    Scales run two octaves (29 notes), arpeggios three (19 notes), in the piece's
    key; minor scales use the harmonic form.

    Args:
        piece: e.g. ``"Scale Des-dur"`` or ``"Arpeggio gis-moll"``.

    Returns:
        The pitch sequence, starting and ending on the tonic.
    """
    kind = piece_kind(piece)
    key = piece.split(" ", 1)[1]
    name, mode = key.split("-", 1)
    pc = _PITCH_CLASS[name[0].upper() + name[1:]]
    minor = mode.lower().startswith("moll")
    if kind == "scale":
        degrees, octaves, tonic = (_HARMONIC_MINOR if minor else _MAJOR), 2, 60 + pc
    else:
        degrees, octaves, tonic = ((0, 3, 7) if minor else (0, 4, 7)), 3, 48 + pc
    up = [tonic + 12 * o + d for o in range(octaves) for d in degrees] + [tonic + 12 * octaves]
    return up + up[-2::-1]


def generate_events(piece: str, style: TakeStyle, *, start_s: float, hands: int,
                    rng: np.random.Generator) -> Events:
    """Play ``piece`` once with ``style``, starting at ``start_s`` seconds.

    Args:
        piece: a name from :data:`profy.contract.schemas.PIECES`.
        style: the take's playing parameters.
        start_s: time of the first onset (the lead-in silence before it).
        hands: 1 (right hand) or 2 (hands together, left hand an octave lower).
        rng: the take's generator.

    Returns:
        The take's :class:`Events`, wrong notes and their corrections included.
    """
    pitches = np.asarray(piece_pitches(piece))
    n = pitches.size
    # Tempo drift is a random walk on the log inter-onset interval; hesitations and
    # corrections after a wrong note add pauses that shift every later note.
    log_ioi = np.cumsum(rng.normal(0.0, style.drift_sd, n))
    ioi = np.exp(log_ioi) / style.notes_per_s
    pause = np.where(rng.random(n) < style.p_hesitate, rng.uniform(0.08, 0.35, n), 0.0)
    wrong = rng.random(n) < style.p_wrong
    wrong[[0, -1]] = False
    pause += np.where(wrong, rng.uniform(0.12, 0.25, n), 0.0)
    pause[0] = 0.0
    nominal = start_s + np.concatenate([[0.0], np.cumsum(ioi[:-1])]) + np.cumsum(pause)
    # Shape the dynamics like a player does: a little crescendo to the top note.
    contour = 0.05 * np.sin(np.linspace(0.0, np.pi, n))
    last_hold = rng.uniform(0.6, 1.2)

    parts = []
    for hand in range(hands):
        shift = -12 * hand
        onset = nominal + rng.normal(0.0, style.jitter_s, n)
        if hand:
            onset += rng.normal(0.0, style.async_s, n)
        # Jitter never reorders notes: a pianist's run stays in order.
        onset = np.maximum.accumulate(onset + np.arange(n) * 1e-6)
        overlap = rng.normal(style.overlap_mean_s, style.overlap_sd_s, n)
        release = np.empty(n)
        release[:-1] = onset[1:] + overlap[:-1]
        release[-1] = onset[-1] + last_hold
        release = np.maximum(release, onset + 0.04)  # even a slip holds the key briefly
        velocity = np.clip(style.velocity_mean + contour - 0.03 * hand
                           + rng.normal(0.0, style.velocity_sd, n), 0.15, 1.0)
        parts.append((pitches + shift, onset, release, velocity))
        # A wrong note: the finger overshoots to the next key in the direction of the
        # run where the right note was due; the correction follows after the pause
        # added above. Hands together, the left hand slips along 70% of the time.
        slips = (wrong & (rng.random(n) < 0.7)) if hand else wrong
        idx = np.flatnonzero(slips)
        if idx.size:
            w_on = nominal[idx] - pause[idx] + rng.normal(0.0, style.jitter_s, idx.size)
            travel = np.sign(pitches[idx] - pitches[idx - 1])
            parts.append((pitches[idx] + shift + travel, w_on,
                          w_on + rng.uniform(0.06, 0.12, idx.size), velocity[idx] * 0.8))
    keys, onset, release, velocity = (np.concatenate(c) for c in zip(*parts, strict=True))
    keys = np.clip(keys - LOWEST_MIDI, 0, N_KEYS - 1).astype(np.int16)
    order = np.argsort(onset, kind="stable")
    return Events(keys=keys[order], onset=onset[order], release=release[order],
                  velocity=velocity[order].astype(np.float32))


# ------------------------------------------------------------------ corpus plan

@dataclass(frozen=True)
class TakePlan:
    """Everything that decides one take, drawn up front so takes render in any order.

    Attributes:
        index: position in the corpus; with ``seed`` it seeds the take's generator.
        seed: the corpus seed.
        playdata_id: the take's 24-hex id (its folder name).
        player_id: the player's 24-hex id.
        piece: a name from :data:`profy.contract.schemas.PIECES`.
        tag: ``"pro"``, ``"amateur"``, or ``""`` for an untagged take.
        latents: the take's cue values (:data:`CUES`), positive = pro-like.
        hands: 1 or 2.
        silence: long leading/trailing silence: ``""`` (none), ``"room"`` (the
            room noise goes on) or ``"digital"`` (the lead-in is exact zeros).
        short: the audio stops ~2-3 s into the playing: ``""`` (no), ``"zeros"``
            (zero-filled to full length) or ``"truncated"`` (a shorter file).
        clip: the audio is driven into clipping.
        created_at: ISO timestamp of the recording.
        defect: a planted defect (:data:`profy.data._synth_config.DEFECT_KINDS`) or ``""``.
        dup_of: for a ``"duplicate"``, the index of the take it copies; else -1.
    """

    index: int
    seed: int
    playdata_id: str
    player_id: str
    piece: str
    tag: str
    latents: dict[str, float]
    hands: int
    silence: str
    short: str
    clip: bool
    created_at: str
    defect: str = ""
    dup_of: int = -1


def hex_ids(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    """``count`` new 24-hex ids (MongoDB ObjectId look-alikes) not in ``taken``."""
    out: list[str] = []
    while len(out) < count:
        new = rng.bytes(12).hex()
        if new not in taken:
            taken.add(new)
            out.append(new)
    return out


def choose_pieces(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` pieces for one player: distinct while possible, both kinds when n >= 2."""
    order = [PIECES[i] for i in rng.permutation(len(PIECES))]
    pieces = order[:n] + [PIECES[i] for i in rng.integers(0, len(PIECES), max(0, n - len(order)))]
    kinds = {piece_kind(p) for p in pieces}
    if n >= 2 and len(kinds) == 1:
        missing = "arpeggio" if "scale" in kinds else "scale"
        pieces[-1] = next(p for p in order if piece_kind(p) == missing)
    return pieces


_EPOCH = dt.datetime(2024, 4, 1, 9, 0, tzinfo=dt.UTC)  # recordings start here


def iso_time(t: dt.datetime) -> str:
    """``2024-04-01T09:00:00.000Z``: the timestamp style of the real label export."""
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plan_takes(cfg: SynthConfig, seed: int, rng: np.random.Generator,
               taken: set[str]) -> list[TakePlan]:
    """Draw the players and every take they recorded.

    Args:
        cfg: corpus shape and difficulty.
        seed: the corpus seed, stored in each plan to seed its take's generator.
        rng: the corpus-level generator (advanced).
        taken: ids already used (extended with the new player and take ids).

    Returns:
        Take plans, tagged players' takes first, then untagged guest takes.
    """
    n_pro = min(max(round(cfg.n_players * cfg.pro_fraction), 1), cfg.n_players - 1)
    tags = ["pro"] * n_pro + ["amateur"] * (cfg.n_players - n_pro)
    rng.shuffle(tags)
    lo, hi = cfg.takes_per_player
    counts = [hi if lo == hi or rng.random() < cfg.full_set_prob else int(rng.integers(lo, hi))
              for _ in tags]
    # Untagged takes belong to a few extra "guest" accounts: the reader skips them all.
    n_untagged = int(np.ceil(cfg.untagged_fraction * sum(counts)))
    n_guests = int(np.ceil(n_untagged / 3))
    guest_counts = [len(range(g, n_untagged, n_guests)) for g in range(n_guests)]
    players = [(tag, tag, n) for tag, n in zip(tags, counts, strict=True)]
    players += [("", str(rng.choice(["pro", "amateur"])), n) for n in guest_counts]
    player_ids = hex_ids(rng, len(players), taken)

    plans: list[TakePlan] = []
    for (tag, hidden, n), player_id in zip(players, player_ids, strict=True):
        sign = 1.0 if hidden == "pro" else -1.0
        mean = {c: sign * getattr(cfg, f"{c}_effect") / 2 + cfg.player_sd * rng.normal()
                for c in CUES}
        session = _EPOCH + dt.timedelta(days=float(rng.uniform(0, 150)))
        for piece, take_id in zip(choose_pieces(rng, n), hex_ids(rng, n, taken), strict=True):
            session += dt.timedelta(seconds=float(rng.uniform(40, 400)))
            plans.append(TakePlan(
                index=len(plans), seed=seed, playdata_id=take_id, player_id=player_id,
                piece=piece, tag=tag,
                latents={c: float(mean[c] + cfg.take_sd * rng.normal()) for c in CUES},
                hands=2 if rng.random() < cfg.hands_together_fraction else 1,
                silence="", short="", clip=False, created_at=iso_time(session)))
    # Defects hit exact shares of takes, silence and shortness never the same take,
    # and their two variants alternate so that even a tiny corpus has both.
    order = [int(i) for i in rng.permutation(len(plans))]
    n_sil = round(cfg.silence_fraction * len(plans))
    n_short = round(cfg.short_fraction * len(plans))
    silence = {i: ("digital", "room")[j % 2] for j, i in enumerate(order[:n_sil])}
    short = {i: ("zeros", "truncated")[j % 2] for j, i in enumerate(order[n_sil:n_sil + n_short])}
    clip = set(rng.permutation(len(plans))[:round(cfg.clip_fraction * len(plans))])
    plans = [replace(p, silence=silence.get(p.index, ""), short=short.get(p.index, ""),
                     clip=p.index in clip) for p in plans]
    return plans
