"""Smoke, benchmark and robustness replays through onnxruntime; importing registers them."""
