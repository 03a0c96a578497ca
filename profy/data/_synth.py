"""A deterministic synthetic Profy corpus, written in the real layout (DESIGN.md §1).

Generative model
----------------
Each player is ``pro`` or ``amateur``. Five independent latent *cues* describe how
they play, each in standard units where positive means more pro-like::

    timing      tempo steadiness, onset jitter, hesitations, wrong notes,
                evenness of dynamics                   -> seen by BOTH modalities
    legato      key release relative to the next onset  -> mainly the SENSOR
    press       key-press speed/shape, pressure wobble  -> SENSOR only
    brightness  upper-partial balance and a >4 kHz hammer
                transient (upper half of the mel range) -> AUDIO only
    loudness    overall strike strength; the sensor
                saturates at the key bed and cannot see it -> AUDIO only

For player ``p`` with label sign ``s`` (+1 pro, -1 amateur) and cue ``c``, the
take-level latent is ``z = s * effect_c / 2 + player_sd * N(0,1)_p + take_sd * N(0,1)_take``.
With the defaults (``player_sd**2 + take_sd**2 ~= 1``) each ``*_effect`` knob is the
Cohen's d of its cue between the classes, per take. Players differ (some amateurs
play like pros on a cue, some pros are sloppy), so no single modality is near
perfect; the cues are independent, so sensor and audio carry complementary evidence.
The take's latents become physical parameters (:func:`profy.data._synth_events.take_style`),
note events are generated for the piece, and both files are rendered from the same
events (:mod:`profy.data._synth_render`). Recording defects (noise, silences, short
or clipped audio) are label-free nuisances.

Everything is drawn from generators seeded by ``(seed, take index)``, so a corpus
is byte-identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profy.contract.atomic import atomic_write_bytes, atomic_write_text
from profy.contract.layout import AUDIO_RELPATH, LABELS_FILE, SENSOR_RELPATH
from profy.contract.schemas import LABEL_COLUMNS, piece_kind
from profy.data._synth_config import SIZES, SynthConfig
from profy.data._synth_defects import (
    PLANTED_DEFECTS_FILE,
    apply_audio_defect,
    plan_defects,
    planted_csv,
    truth_row,
)
from profy.data._synth_events import (
    TakePlan,
    generate_events,
    hex_ids,
    iso_time,
    plan_takes,
    take_style,
)
from profy.data._synth_render import (
    AudioQuirks,
    format_hackkey,
    render_audio,
    render_sensor,
    wav_bytes,
)
from profy.errors import ConfigError

__all__ = ["SIZES", "SynthConfig", "SynthSummary", "synthesize_corpus"]

_MARKER = ".profy-synth"  # marks a folder this module wrote, so it may overwrite it


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize_corpus` wrote.

    Attributes:
        out_dir: the corpus root (holds ``playdata/`` and ``labels.csv``).
        n_takes: take folders written, untagged ones included.
        n_players: distinct players on disk, the untagged "guest" accounts included.
        n_label_rows: rows of ``labels.csv`` (one per rater answer).
        n_untagged_rows: rows with an empty ``player_tag``.
        seconds: wall-clock time taken.
        bytes_written: total size of the files written.
    """

    out_dir: Path
    n_takes: int
    n_players: int
    n_label_rows: int
    n_untagged_rows: int
    seconds: float
    bytes_written: int


def plan_corpus(cfg: SynthConfig, seed: int) -> tuple[list[TakePlan], list[dict[str, str]]]:
    """Draw players, their takes and every rater answer from one seeded generator.

    Returns:
        The take plans (tagged takes first, then untagged guest takes) and the
        shuffled ``labels.csv`` rows.
    """
    rng = np.random.default_rng([seed, 0])
    taken: set[str] = set()
    plans = plan_takes(cfg, seed, rng, taken)
    if cfg.defects is not None:  # opt-in: its own generator, so the plan above is unchanged
        plans = plan_defects(plans, cfg.defects, seed, taken)
    return plans, _label_rows(cfg, plans, rng, taken)


def _label_rows(cfg: SynthConfig, plans: list[TakePlan], rng: np.random.Generator,
                taken: set[str]) -> list[dict[str, str]]:
    """One row per rater answer; raters score pros higher on average, with overlap."""
    raters = hex_ids(rng, cfg.n_raters, taken)
    leniency = rng.normal(0.0, 0.5, cfg.n_raters)
    lo, hi = cfg.ratings_per_take
    rows: list[dict[str, str]] = []
    for plan in plans:
        extra = np.floor(rng.lognormal(np.log(cfg.ratings_scale), 0.9))
        n = int(np.clip(lo + extra, lo, hi))
        quality = float(np.mean(list(plan.latents.values())))
        preparation = str(rng.integers(0, 4))  # a small int, like the real export's column
        recorded = dt.datetime.fromisoformat(plan.created_at)
        for rater in rng.choice(cfg.n_raters, n, replace=False):
            score1 = np.clip(np.rint(4.2 + 0.9 * quality + leniency[rater] + rng.normal(0, 0.8)),
                             1, 7)
            score2 = np.clip(np.rint(score1 + rng.normal(0, 0.8)), 1, 7)
            answered = recorded + dt.timedelta(hours=float(rng.uniform(2, 24 * 40)))
            rows.append({
                "user_id": raters[rater], "playdata_id": plan.playdata_id,
                "updated_at": iso_time(answered), "is_answered": "True",
                "score1": str(int(score1)), "score2": str(int(score2)),
                "player_id": plan.player_id, "piecetask_name": plan.piece,
                "player_tag": plan.tag, "preparation": preparation})
    return [rows[i] for i in rng.permutation(len(rows))]


def labels_csv(rows: list[dict[str, str]]) -> str:
    """The ``labels.csv`` text: the exact real header, then ``rows``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LABEL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _prepare_out_dir(out: Path) -> None:
    """Create ``out`` or clear a previous synthetic corpus there; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output path exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    if not (out / _MARKER).exists():
        if not (out / LABELS_FILE).is_file():
            raise ConfigError(f"{out}: folder is not empty and holds no corpus (no labels.csv);"
                              " refusing to write into it")
        # A corpus we did not mark: overwrite only if every take says it is synthetic,
        # so a real corpus can never be wiped by a mistyped --out.
        metas = sorted((out / "playdata").glob("*/meta.json"))
        if not metas:
            raise ConfigError(f"{out}: holds a labels.csv but no synthetic takes; "
                              "refusing to overwrite it")
        for meta in metas:
            try:
                synthetic = json.loads(meta.read_text(encoding="utf-8")).get("synthetic") is True
            except (OSError, ValueError, AttributeError):
                synthetic = False
            if not synthetic:
                raise ConfigError(f"{out}: holds a corpus that is not synthetic ({meta} lacks "
                                  "'synthetic': true); refusing to overwrite it")
    (out / LABELS_FILE).unlink(missing_ok=True)  # first, so a half-cleared folder is no corpus
    (out / PLANTED_DEFECTS_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / "playdata", ignore_errors=True)


def _take_quirks(plan: TakePlan, cfg: SynthConfig, first_onset: float,
                 rng: np.random.Generator) -> AudioQuirks:
    noisy = rng.random() < cfg.noisy_fraction
    return AudioQuirks(
        lead_zero_s=first_onset - rng.uniform(0.3, 0.8) if plan.silence == "digital" else 0.0,
        cut_s=first_onset + rng.uniform(2.0, 3.0) if plan.short else None,
        truncate=plan.short == "truncated",
        clip_peak=float(rng.uniform(1.15, 1.6)) if plan.clip else None,
        noise_db=float(rng.uniform(-38, -26) if noisy else rng.uniform(-64, -46)),
    )


def render_take(plan: TakePlan, cfg: SynthConfig, out: Path) -> tuple[int, dict[str, str]]:
    """Generate and write one take folder; return the bytes written and its truth row.

    A duplicate re-renders the take it copies (that take's generator) before its own
    damage; a planted defect draws from a generator of its own, after everything else.
    """
    rng = np.random.default_rng([plan.seed, plan.dup_of if plan.dup_of >= 0 else plan.index, 7])
    defect_rng = np.random.default_rng([plan.seed, plan.index, 11])
    style = take_style(plan.latents, piece_kind(plan.piece), rng)
    lead = rng.uniform(2.5, 4.5) if plan.silence else rng.uniform(0.4, 1.5)
    events = generate_events(plan.piece, style, start_s=lead, hands=plan.hands, rng=rng)
    ring = events.end + 0.6  # let the last note die away
    if plan.silence:
        duration = ring + rng.uniform(2.0, 3.5)
    else:
        duration = max(rng.uniform(*cfg.duration_s), ring + rng.uniform(0.1, 0.5))
    duration = min(duration, max(15.5, ring))
    sr = cfg.audio_sample_rate
    sensor_lead = rng.uniform(0.05, 0.3)
    if plan.defect == "sync_offset":
        sensor_lead += defect_rng.uniform(0.5, 1.0)
    n_rows = int((sensor_lead + duration + rng.uniform(0.0, 0.3)) * cfg.sensor_rate_hz)
    times, keys = render_sensor(events, style, n_rows=n_rows, rate_hz=cfg.sensor_rate_hz,
                                lead_s=sensor_lead, rng=rng)
    quirks = _take_quirks(plan, cfg, float(events.onset.min()), rng)
    audio = render_audio(events, style, n_samples=int(duration * sr), sr=sr, quirks=quirks,
                         rng=rng)
    if plan.defect:
        audio = apply_audio_defect(audio, sr, plan.defect, events, defect_rng)
    take = out / "playdata" / plan.playdata_id
    written = 0
    for path, data in (
        (take / SENSOR_RELPATH, format_hackkey(times, keys)),
        (take / AUDIO_RELPATH, wav_bytes(audio, sr)),
        (take / "meta.json", (json.dumps({
            "playdata_id": plan.playdata_id, "player_id": plan.player_id, "piece": plan.piece,
            "created_at": plan.created_at, "synthetic": True}, indent=2) + "\n").encode()),
    ):
        atomic_write_bytes(path, data)
        written += len(data)
    # room noise louder than -40 dBFS is the "noisy" quirk (clean rooms: -64..-46 dBFS)
    return written, truth_row(plan, noisy=quirks.noise_db > -40.0, sensor_lead_s=sensor_lead)


def _render_chunk(args: tuple[list[TakePlan], SynthConfig, Path]
                  ) -> list[tuple[int, dict[str, str]]]:
    plans, cfg, out = args
    return [render_take(p, cfg, out) for p in plans]


def _pool(workers: int) -> ProcessPoolExecutor:
    """A process pool; forked where possible.

    Fork needs no ``if __name__ == "__main__"`` guard in the caller's script and no
    re-import per worker. Workers only run numpy, so the usual fork hazard (a lock
    held by another thread of the parent) does not reach them; the pool is started
    before any thread of ours.
    """
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    import rich.progress as rp

    with rp.Progress(rp.TextColumn("synth"), rp.BarColumn(), rp.MofNCompleteColumn(),
                     rp.TimeElapsedColumn(), rp.TimeRemainingColumn()) as bar:
        task = bar.add_task("takes", total=total)
        yield lambda n: bar.advance(task, n)


def _render_all(plans: list[TakePlan], config: SynthConfig, out: Path, *,
                workers: int | None, progress: bool) -> tuple[int, list[dict[str, str]]]:
    """Render every take, in worker processes for larger corpora.

    Returns:
        Bytes written and every take's ``planted_defects.csv`` row.
    """
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = 1 if len(plans) < 24 else max(1, min(4, cpus or 1))
    written, truth = 0, []
    if workers <= 1:
        with _progress_bar(progress, len(plans)) as advance:
            for plan in plans:
                size, row = render_take(plan, config, out)
                written += size
                truth.append(row)
                advance(1)
        return written, truth
    step = 4  # a few takes per task: little IPC, smooth progress
    chunks = [plans[i:i + step] for i in range(0, len(plans), step)]
    with _pool(workers) as pool:
        try:
            # Submitting first starts the workers before the progress bar's thread exists.
            futures = [pool.submit(_render_chunk, (chunk, config, out)) for chunk in chunks]
            with _progress_bar(progress, len(plans)) as advance:
                for future in as_completed(futures):
                    results = future.result()
                    written += sum(size for size, _ in results)
                    truth += [row for _, row in results]
                    advance(len(results))
        except BaseException:
            # Ctrl-C or a failed take: drop queued work instead of rendering it first.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return written, truth


def synthesize_corpus(out_dir: str | Path, *, size: str = "small", seed: int = 0,
                      config: SynthConfig | None = None, progress: bool = False,
                      workers: int | None = None) -> SynthSummary:
    """Write a synthetic corpus in the real Profy layout.

    Args:
        out_dir: corpus root to write; created if missing. A previous synthetic corpus
            there is replaced; any other non-empty folder is refused.
        size: ``"tiny"`` (tests), ``"small"`` (demo), ``"medium"`` or ``"full"``
            (real-corpus scale).
        seed: everything written is a function of ``seed`` (and the config).
        config: overrides the preset of ``size`` entirely when given.
        progress: show a rich progress bar.
        workers: processes rendering takes; ``None`` uses up to 4 CPUs for corpora of
            24+ takes. The output does not depend on it.

    Returns:
        A :class:`SynthSummary`.

    Raises:
        ConfigError: unknown ``size``, invalid config, or an unsafe ``out_dir``.
    """
    start = time.perf_counter()
    preset = size if config is None else "custom"
    if config is None:
        if size not in SIZES:
            raise ConfigError(f"unknown synthetic corpus size {size!r}; "
                              f"valid sizes: {', '.join(SIZES)}")
        config = SIZES[size]
    out = Path(out_dir)
    _prepare_out_dir(out)
    atomic_write_text(out / _MARKER, json.dumps({"seed": seed, "size": preset}) + "\n")
    plans, rows = plan_corpus(config, seed)
    written, truth = _render_all(plans, config, out, workers=workers, progress=progress)
    ids = {p.index: p.playdata_id for p in plans}
    for plan, row in zip(sorted(plans, key=lambda p: p.playdata_id),
                         sorted(truth, key=lambda r: r["playdata_id"]), strict=True):
        row["dup_of"] = ids[plan.dup_of] if plan.dup_of >= 0 else ""
    planted = planted_csv(truth).encode()
    atomic_write_bytes(out / PLANTED_DEFECTS_FILE, planted)  # ground truth; no check reads it
    labels = labels_csv(rows).encode()
    atomic_write_bytes(out / LABELS_FILE, labels)  # last: its presence means complete
    return SynthSummary(
        out_dir=out, n_takes=len(plans), n_players=len({p.player_id for p in plans}),
        n_label_rows=len(rows), n_untagged_rows=sum(1 for r in rows if not r["player_tag"]),
        seconds=time.perf_counter() - start, bytes_written=written + len(planted) + len(labels))

