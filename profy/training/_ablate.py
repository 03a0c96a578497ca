"""``profy ablate``: audio-encoder and SpecAugment ablation on one fold.

Four variants, each trained in the ``audio`` and ``multimodal`` modes on the same fold,
splits and seed: the audio encoder as a plain CNN or CNN + TCN (``model.use_tcn``),
crossed with SpecAugment time masking off or on (``train.spec_augment``, mask width
``features.spec_augment_time_mask``). Every variant is a run folder of its own under
``OUT/variants/`` (its shards, checkpoints and log, so a rerun keeps finished ones);
``OUT/ablation.json`` and ``OUT/ablation.md`` tabulate macro F1, epochs and seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profy.config import config_hash, load_profile
from profy.contract.atomic import atomic_write_json, atomic_write_text
from profy.contract.layout import FEATURES_DIR
from profy.training._cv import run_cv, select_folds
from profy.training._merge import read_shard_result

__all__ = ["ABLATION_MODES", "AblationResult", "DEFAULT_MASK_FRAMES", "VARIANTS", "ablate"]

ABLATION_MODES = ("audio", "multimodal")
DEFAULT_MASK_FRAMES = 40  # 0.8 s at 50 frames/s, when the profile sets no mask width
# name -> (use_tcn, spec_augment)
VARIANTS = {"cnn": (False, False), "cnn+tcn": (True, False),
            "cnn+specaug": (False, True), "cnn+tcn+specaug": (True, True)}


@dataclass(frozen=True)
class AblationResult:
    """Where the ablation wrote and its rows (one per variant and mode)."""

    out_dir: Path
    json_path: Path
    markdown_path: Path
    rows: tuple[dict[str, Any], ...]
    seconds: float


def _markdown(rows: Sequence[dict[str, Any]], fold: int, profile: str) -> str:
    lines = [f"# Ablation on fold {fold} (profile {profile})", "",
             "Held-out (test) macro F1 of the fold; epochs = epochs run (early stopping).", "",
             "| variant | mode | macro F1 | epochs | seconds |",
             "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['mode']} | {r['macro_f1']:.4f} | "
                     f"{r['epochs']} | {r['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def _variant_configs(profile: str | Path, extra: list[str], base: Any) -> dict[str, Any]:
    """Each variant's config: the profile plus the variant's TCN and SpecAugment knobs."""
    mask = base.features.spec_augment_time_mask or DEFAULT_MASK_FRAMES
    configs = {}
    for name, (tcn, spec) in VARIANTS.items():
        knobs = [f"train.modes=[{', '.join(ABLATION_MODES)}]", f"model.use_tcn={str(tcn).lower()}",
                 f"train.spec_augment={str(spec).lower()}"]
        if spec:
            knobs.append(f"features.spec_augment_time_mask={mask}")
        configs[name] = load_profile(profile, [*extra, *knobs])
    return configs


def _row(name: str, mode: str, cfg: Any, run_dir: Path, res: dict[str, Any]) -> dict[str, Any]:
    """One ``ablation.json`` row from a variant's finished shard ``result.json``."""
    return {"variant": name, "mode": mode, "use_tcn": cfg.model.use_tcn,
            "spec_augment": cfg.train.spec_augment,
            "spec_augment_time_mask": cfg.features.spec_augment_time_mask,
            "macro_f1": float(res["test_macro_f1"]), "accuracy": float(res["test_accuracy"]),
            "val_macro_f1": float(res["val_macro_f1"]), "epochs": int(res["epochs_run"]),
            "kept_epoch": int(res["kept_epoch"]), "seconds": float(res["seconds"]),
            "config_hash": config_hash(cfg), "run_dir": str(run_dir.resolve())}


def ablate(data_root: str | Path, out_dir: str | Path, *, fold: int,
           profile: str | Path = "mm-audiofix", epochs: int | None = None,
           overrides: Sequence[str] = (), cache_dir: str | Path | None = None,
           labels_path: str | Path | None = None, skip_bad: bool = False, workers: int = 2,
           progress: bool = False, console: Any = None) -> AblationResult:
    """Train the four variants (see module doc) on ``fold`` and write the tables.

    Args:
        data_root: corpus root.
        out_dir: output folder (``ablation.json``, ``ablation.md``, ``variants/``,
            ``features/``).
        fold: the player-wise fold to train and score.
        profile: base profile name or YAML file.
        epochs: override ``train.epochs``.
        overrides: ``section.key=value`` strings applied after the profile.
        cache_dir: feature cache. (Default: ``out_dir/cache``)

    Raises:
        ConfigError: a bad profile, override or fold.
        DataError, FeatureError, LeakageError: as ``profy train``.
    """
    from profy.data import build_manifest, make_folds
    from profy.features import FeatureStore, compute_features

    start = time.perf_counter()
    out_dir = Path(out_dir)
    extra = [*overrides, *([f"train.epochs={int(epochs)}"] if epochs is not None else [])]
    base = load_profile(profile, extra)
    select_folds(base.train.n_folds, [fold])
    configs = _variant_configs(profile, extra, base)
    manifest = build_manifest(data_root, labels_path=labels_path, skip_bad=skip_bad,
                              progress=progress)
    takes = manifest.table.select(["sample_id", "player_id", "piece", "label"]).to_pandas()
    splits = make_folds(takes, n_folds=base.train.n_folds, seed=base.train.seed,
                        val_fraction=base.train.val_fraction)
    cache = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    feature_runs: dict[str, Any] = {}
    rows = []
    for name, cfg in configs.items():
        key = config_hash(cfg.features)[:12]  # the mask width is part of the feature hash
        if key not in feature_runs:
            feature_runs[key] = compute_features(
                data_root, manifest.table, out_dir / FEATURES_DIR / key, cfg=cfg.features,
                cache_dir=cache, workers=workers, progress=progress)
        feats = feature_runs[key]
        run_dir = out_dir / "variants" / name.replace("+", "_")
        run_cv(cfg, run_dir, store=FeatureStore(feats.index_path), splits=splits,
               audio_stats=feats.audio_stats_path, profile=str(profile), progress=progress,
               console=console, folds=[fold])
        rows += [_row(name, mode, cfg, run_dir, read_shard_result(run_dir, mode, fold))
                 for mode in ABLATION_MODES]
    json_path = atomic_write_json(out_dir / "ablation.json", {
        "version": 1, "fold": int(fold), "profile": str(profile), "seed": base.train.seed,
        "epochs": base.train.epochs, "modes": list(ABLATION_MODES), "rows": rows})
    md_path = atomic_write_text(out_dir / "ablation.md", _markdown(rows, fold, str(profile)))
    return AblationResult(out_dir=out_dir.resolve(), json_path=json_path.resolve(),
                          markdown_path=md_path.resolve(), rows=tuple(rows),
                          seconds=time.perf_counter() - start)
