"""Data-quality suites, Parquet audits and ONNX checks; importing registers them.

Great Expectations and pyspark load lazily, when a suite first runs.
"""

from guardrails.checks import (
    audit,
    audit_integrity,
    data_quality,
    data_quality_norm,
    onnx,  # issue 6: registers onnx.*
    onnx_model,
    quarantine,
)

__all__ = ["audit", "audit_integrity", "data_quality", "data_quality_norm", "onnx", "onnx_model",
           "quarantine"]
