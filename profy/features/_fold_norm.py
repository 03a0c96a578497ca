"""Per-fold global normalization: fitted on each fold's ``train`` takes only, streamed.

The pre-plan model fitted statistics on all takes, so validation takes leaked into
every fold's input scaling. Here each fold's :class:`NormStats` sees exactly the takes
whose role is ``train`` in that fold (never ``val`` or ``test``), one take at a time,
and the artifact records their ids; a check after fitting proves it.

Jobs that share one run folder (one per fold, started at once) each need every fold's
artifact. With ``keep_existing`` the first artifact published for a fold is the fold's
for good: a job finding one verifies it instead of fitting, and a job that loses the race
to publish reads the winner's. (Two fits of the same takes differ in ``created_at``, so
overwriting would change the sha256 that an earlier job already logged as ``NORM_REF``.)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from profy.contract.atomic import atomic_create_bytes
from profy.errors import FeatureError
from profy.features._normalization import NormFitter, NormStats, check_config_hash
from profy.features._pipeline import FeatureStore

__all__ = ["fit_fold_norm_stats"]


def fit_fold_norm_stats(store: FeatureStore, splits: pd.DataFrame, out_dir: str | Path, *,
                        all_takes: bool = False,
                        keep_existing: bool = False) -> dict[int, Path]:
    """Fit and write ``out_dir/norm_stats/fold_K.json`` for every fold in ``splits``.

    Args:
        store: the corpus's cached features.
        splits: ``splits.parquet`` rows (``sample_id, fold, role``).
        out_dir: run folder; files go to its ``norm_stats/``.
        all_takes: LEGACY (``legacy-20250925``): fit on every take, held-out ones
            included, reproducing the pre-plan leak so the gates can be shown to catch it.

    Returns:
        fold -> path of its artifact.

    Raises:
        FeatureError: a take in the splits has no cached features.
        LeakageError: the fitted ids are not exactly the fold's training takes.
        MalformedFileError: (``keep_existing``) a fold's existing artifact is unreadable.
    """
    missing = sorted(set(splits["sample_id"]) - set(store.sample_ids))
    if missing:
        raise FeatureError(f"{len(missing)} take(s) in the splits have no features in "
                           f"{store.index_path}, e.g. {missing[:3]}")
    paths = {}
    for fold, part in splits.groupby("fold"):
        train_ids = sorted(part.loc[part["role"] == "train", "sample_id"])
        held_out = sorted(part.loc[part["role"] != "train", "sample_id"])
        fit_ids = sorted(part["sample_id"]) if all_takes else train_ids
        path = Path(out_dir) / "norm_stats" / f"fold_{int(fold)}.json"
        if keep_existing and path.is_file():
            paths[int(fold)] = _verified(path, store, fit_ids, held_out, all_takes)
            continue
        fitter = NormFitter(store.feature_config_hash)
        for sample_id in fit_ids:
            arrays = store[sample_id]
            fitter.update(sample_id, arrays["logmel"], arrays["audio_mask"], arrays["sensor"],
                          arrays["sensor_mask"])
        stats = fitter.finalize(int(fold))
        if not all_takes:
            stats.check_fitted_on(train_ids, held_out=held_out)
        if not keep_existing:
            paths[int(fold)] = stats.to_json(path)
        elif atomic_create_bytes(path, stats.to_json_bytes()):
            paths[int(fold)] = path
        else:  # another job published this fold's artifact while we fitted
            paths[int(fold)] = _verified(path, store, fit_ids, held_out, all_takes)
    return paths


def _verified(path: Path, store: FeatureStore, fit_ids: list[str], held_out: list[str],
              all_takes: bool) -> Path:
    """``path``, after checking it holds stats of this feature config fitted on ``fit_ids``."""
    stats = NormStats.from_json(path)
    check_config_hash(stats, store.feature_config_hash)
    stats.check_fitted_on(fit_ids, held_out=() if all_takes else held_out)
    return path
