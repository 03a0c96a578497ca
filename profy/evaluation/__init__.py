"""Evaluation: classification metrics and the ``complete_results.json`` schema.

Torch-free on purpose (numpy and pandas only): the ``guardrails`` gate image imports
this package to recompute metrics and validate results files.

- :mod:`profy.evaluation.metrics`: scikit-learn-style metrics and the metric registry.
- :mod:`profy.evaluation.results`: build, validate, write and read ``complete_results.json``.
"""

from profy.evaluation._schema import (
    ClassScores,
    CompleteResults,
    FoldResult,
    ModeResult,
    SliceResult,
)
from profy.evaluation.metrics import (
    METRICS,
    MetricSpec,
    accuracy_score,
    confusion_matrix,
    expected_calibration_error,
    f1_score,
    get_metric,
    macro_f1_score,
    precision_recall_f1_support,
    register_metric,
    reliability_table,
    weighted_f1_score,
)
from profy.evaluation.results import (
    COMPLETE_RESULTS_SCHEMA,
    ECE_BINS,
    KNOWN_SCHEMA_VERSIONS,
    PREDICTION_COLUMNS,
    REQUIRED_RUN_KEYS,
    STD_DDOF,
    ZERO_DIVISION,
    build_complete_results,
    confusion_csv,
    read_complete_results,
    validate_complete_results,
    write_complete_results,
)

__all__ = [
    "COMPLETE_RESULTS_SCHEMA",
    "ECE_BINS",
    "KNOWN_SCHEMA_VERSIONS",
    "METRICS",
    "PREDICTION_COLUMNS",
    "REQUIRED_RUN_KEYS",
    "STD_DDOF",
    "ZERO_DIVISION",
    "ClassScores",
    "CompleteResults",
    "FoldResult",
    "MetricSpec",
    "ModeResult",
    "SliceResult",
    "accuracy_score",
    "build_complete_results",
    "confusion_csv",
    "confusion_matrix",
    "expected_calibration_error",
    "f1_score",
    "get_metric",
    "macro_f1_score",
    "precision_recall_f1_support",
    "read_complete_results",
    "register_metric",
    "reliability_table",
    "validate_complete_results",
    "weighted_f1_score",
    "write_complete_results",
]
