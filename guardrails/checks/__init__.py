"""Data-quality suites, Parquet audits and ONNX checks; importing registers them.

Great Expectations and pyspark load lazily, when a suite first runs.
"""

from guardrails.checks import (
    audit,
    audit_integrity,
    data_quality,
    data_quality_duplicates,  # issue 20: registers data.duplicates
    data_quality_norm,
    data_quality_recording,  # issue 20: registers data.recording, data.sync
    onnx,  # issue 6: registers onnx.*
    onnx_model,
    quarantine,
)

__all__ = ["audit", "audit_integrity", "data_quality", "data_quality_duplicates",
           "data_quality_norm", "data_quality_recording", "onnx", "onnx_model", "quarantine"]
