"""Features for the `full` synthetic corpus: cold vs cached, and log-mel vs librosa.

Figures (one run, same takes): cold time (empty cache, 2 workers), cached rerun time
and their ratio; log-mel of decoded audio with Profy's torchaudio path vs librosa
(resample + melspectrogram + power_to_db with the same parameters), one process each,
as a ratio. Targets (issue 4): cold <= 60 s, cached >= 10x faster than cold.

    .venv/bin/python benchmarks/bench_features.py [--corpus DIR] [--librosa-takes N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import corpus_or_synth, spread, timed, write_result  # noqa: E402


def _librosa_ratio(root: Path, rel_paths: list[str], cfg) -> dict:
    """Resample + 128-band log-mel of the same decoded takes: torchaudio path vs librosa."""
    import librosa
    import numpy as np
    import torch
    import torchaudio

    from profy.data import read_audio
    from profy.features import LogMel

    torch.set_num_threads(1)  # librosa runs on one core too
    audios = [read_audio(root / p) for p in rel_paths]
    log_mel = LogMel.from_config(cfg)
    resample = torchaudio.transforms.Resample(audios[0].sample_rate, cfg.sample_rate)
    start = time.perf_counter()
    with torch.inference_mode():
        for audio in audios:
            mono = torch.from_numpy(audio.samples).mean(dim=1)
            log_mel(resample(mono))
    profy_s = time.perf_counter() - start
    start = time.perf_counter()
    for audio in audios:
        y = librosa.resample(audio.samples.mean(axis=1), orig_sr=audio.sample_rate,
                             target_sr=cfg.sample_rate)
        mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft,
                                             hop_length=cfg.hop_length, n_mels=cfg.n_mels,
                                             fmin=cfg.f_min, fmax=cfg.f_max, htk=False,
                                             norm="slaney", power=2.0)
        librosa.power_to_db(mel, ref=np.max, top_db=cfg.top_db)
    librosa_s = time.perf_counter() - start
    return {"takes": len(audios), "profy_torchaudio_s": profy_s, "librosa_s": librosa_s,
            "speedup_vs_librosa": librosa_s / profy_s,
            "what": "downmix + resample 44.1->16 kHz + 128-band Slaney log-mel, one thread each"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None,
                        help="an existing `full` corpus (default: generate one)")
    parser.add_argument("--librosa-takes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from profy.config import FeatureConfig
    from profy.data import build_manifest
    from profy.features import compute_features

    work = Path(tempfile.mkdtemp(prefix="bench_features_"))
    try:
        root = corpus_or_synth(args.corpus, work)
        manifest_s, manifest = timed(lambda: build_manifest(root, workers=2))
        table = manifest.table
        cache = work / "cache"
        cold_s, cold = timed(lambda: compute_features(root, table, work / "out", cache_dir=cache,
                                                      workers=args.workers, progress=True))
        warm_s, warm = timed(lambda: compute_features(root, table, work / "out2",
                                                      cache_dir=cache, workers=args.workers),
                             repeats=3)
        assert warm.cache.misses == 0 and warm.cache.rejected == 0
        librosa = _librosa_ratio(root, table["audio_path"].to_pylist()[:args.librosa_takes],
                                 FeatureConfig())
        payload = {
            "takes": cold.n_takes, "audio_seconds": cold.audio_seconds, "workers": args.workers,
            "manifest": spread(manifest_s),
            "cold": {**spread(cold_s), "takes_per_s": cold.takes_per_s,
                     "audio_s_per_s": cold.audio_s_per_s},
            "cached": spread(warm_s),
            "cached_speedup": min(cold_s) / min(warm_s),
            "targets": {"cold_max_s": 60, "cached_min_speedup": 10},
            "librosa": librosa,
        }
        write_result("features", payload)
        print(f"cold {cold_s[0]:.1f} s ({cold.takes_per_s:.1f} takes/s, "
              f"{cold.audio_s_per_s:.0f} s audio/s), cached {min(warm_s):.2f} s "
              f"({payload['cached_speedup']:.1f}x), log-mel {librosa['speedup_vs_librosa']:.1f}x "
              "librosa")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
