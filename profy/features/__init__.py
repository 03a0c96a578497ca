"""Profy's feature layer: log-mel, silence-aware masks, quality vector, sensor framing,
global normalization and SpecAugment.

``functional`` holds pure tensor functions, ``transforms`` their ``nn.Module`` wrappers;
:class:`FeatureExtractor` composes them per take, :class:`NormFitter` fits the
training-fold statistics that :func:`apply_global_norm` applies; :func:`compute_features`
runs the extractor over a corpus through a content-addressed cache, and
:func:`featurize_corpus` checks a corpus's takes and featurizes them in one pass.

Names load on first use (PEP 562): ``profy features`` on a fully cached corpus needs the
cache and the pipeline, not torch, so ``from profy.features import compute_features``
does not import it (about 1.4 s of a ~3 s cached run).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule defining it ("" for the submodule of that name itself)
_WHERE = {
    "QUALITY_FIELDS": "profy.contract.schemas",
    "functional": "", "transforms": "",
    **dict.fromkeys(["CacheStats", "FeatureCache", "cache_key", "file_sha256"], "_cache"),
    **dict.fromkeys(["FeatureExtractor", "TakeFeatures", "extract_take"], "_extract"),
    "fit_fold_norm_stats": "_fold_norm",
    **dict.fromkeys(["NORM_STATS_VERSION", "STD_FLOOR", "NormFitter", "NormStats",
                     "apply_global_norm", "apply_sensor_norm", "check_config_hash",
                     "sample_ids_sha256"], "_normalization"),
    **dict.fromkeys(["FeatureRun", "FeatureStore", "compute_features"], "_pipeline"),
    "featurize_corpus": "_corpus",
    **dict.fromkeys(["N_KEYS", "AudioQuality", "per_sample_zscore"], "functional"),
    **dict.fromkeys(["GlobalNormalize", "LogMel", "SensorFraming", "SilenceMask",
                     "TimeMaskAugment"], "transforms"),
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if where == "":
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        module = importlib.import_module(where if "." in where else f"{__name__}.{where}")
        value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "NORM_STATS_VERSION",
    "N_KEYS",
    "QUALITY_FIELDS",
    "STD_FLOOR",
    "AudioQuality",
    "CacheStats",
    "FeatureCache",
    "FeatureExtractor",
    "FeatureRun",
    "FeatureStore",
    "GlobalNormalize",
    "LogMel",
    "NormFitter",
    "NormStats",
    "SensorFraming",
    "SilenceMask",
    "TakeFeatures",
    "TimeMaskAugment",
    "apply_global_norm",
    "apply_sensor_norm",
    "cache_key",
    "check_config_hash",
    "compute_features",
    "extract_take",
    "featurize_corpus",
    "file_sha256",
    "fit_fold_norm_stats",
    "functional",
    "per_sample_zscore",
    "sample_ids_sha256",
    "transforms",
]
