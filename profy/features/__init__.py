"""Profy's feature layer: log-mel, silence-aware masks, quality vector, sensor framing,
global normalization and SpecAugment.

``functional`` holds pure tensor functions, ``transforms`` their ``nn.Module`` wrappers;
:class:`FeatureExtractor` composes them per take, :class:`NormFitter` fits the
training-fold statistics that :func:`apply_global_norm` applies; :func:`compute_features`
runs the extractor over a corpus through a content-addressed cache.
"""

from profy.contract.schemas import QUALITY_FIELDS
from profy.features import functional, transforms
from profy.features._cache import CacheStats, FeatureCache, cache_key, file_sha256
from profy.features._extract import FeatureExtractor, TakeFeatures, extract_take
from profy.features._fold_norm import fit_fold_norm_stats
from profy.features._normalization import (
    NORM_STATS_VERSION,
    STD_FLOOR,
    NormFitter,
    NormStats,
    apply_global_norm,
    apply_sensor_norm,
    check_config_hash,
    sample_ids_sha256,
)
from profy.features._pipeline import (
    FeatureRun,
    FeatureStore,
    compute_features,
)
from profy.features.functional import N_KEYS, AudioQuality, per_sample_zscore
from profy.features.transforms import (
    GlobalNormalize,
    LogMel,
    SensorFraming,
    SilenceMask,
    TimeMaskAugment,
)

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
    "file_sha256",
    "fit_fold_norm_stats",
    "functional",
    "per_sample_zscore",
    "sample_ids_sha256",
    "transforms",
]
