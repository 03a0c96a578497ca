"""Smoke, benchmark and robustness replays through onnxruntime; importing registers them."""

from guardrails.replay import benchmark, robustness, smoke  # noqa: F401  (register checks)
