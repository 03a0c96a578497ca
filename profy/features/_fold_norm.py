"""Per-fold global normalization: fitted on each fold's ``train`` takes only, streamed.

The pre-plan model fitted statistics on all takes, so validation takes leaked into
every fold's input scaling. Here each fold's :class:`NormStats` sees exactly the takes
whose role is ``train`` in that fold (never ``val`` or ``test``), one take at a time,
and the artifact records their ids; a check after fitting proves it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from profy.errors import FeatureError
from profy.features._normalization import NormFitter
from profy.features._pipeline import FeatureStore

__all__ = ["fit_fold_norm_stats"]


def fit_fold_norm_stats(store: FeatureStore, splits: pd.DataFrame, out_dir: str | Path, *,
                        all_takes: bool = False) -> dict[int, Path]:
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
        fitter = NormFitter(store.feature_config_hash)
        for sample_id in fit_ids:
            arrays = store[sample_id]
            fitter.update(sample_id, arrays["logmel"], arrays["audio_mask"], arrays["sensor"],
                          arrays["sensor_mask"])
        stats = fitter.finalize(int(fold))
        if not all_takes:
            stats.check_fitted_on(train_ids, held_out=held_out)
        paths[int(fold)] = stats.to_json(Path(out_dir) / "norm_stats" / f"fold_{int(fold)}.json")
    return paths
