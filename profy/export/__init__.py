"""ONNX export of trained models, normalization included, with reference outputs.

    from profy.export import export_models, select_models, select_tagged

    results = export_models(run, select_models(run, modes=["multimodal"]), workers=2)
    results = export_models(run, select_tagged(run, "mm-audiofix"), tag="mm-audiofix")

Each ``RUN/onnx/<mode>_fold<K>.onnx`` takes the RAW cached features (``sensor (B, T, 88)``,
``sensor_mask (B, T)``, ``logmel (B, n_mels, T)``, ``audio_mask (B, T)``, ``quality (B, 5)``,
those the mode uses) and returns ``logits``, ``probs`` (+ ``modality_weights``), with
dynamic B and T; beside it ``<mode>_fold<K>.npz`` holds eager reference cases.
"""

from profy.export._export import OPSET, ExportResult, export_in_process
from profy.export._graph import NormalizedModel
from profy.export._parallel import export_model, export_models, select_models
from profy.export._references import CASES_KEY
from profy.export._tagged import select_tagged

__all__ = ["CASES_KEY", "OPSET", "ExportResult", "NormalizedModel", "export_in_process",
           "export_model", "export_models", "select_models", "select_tagged"]
