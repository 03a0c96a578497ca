"""Acceptance gates and baseline comparison; importing registers them.

Modules: :mod:`~guardrails.gates.acceptance` (F1 thresholds with verdict stability),
:mod:`~guardrails.gates.consistency` (results recomputed from predictions),
:mod:`~guardrails.gates.fusion` (modality weights, training.log references),
:mod:`~guardrails.gates.known_bugs` (the legacy model's bugs),
:mod:`~guardrails.gates.slices` (slices, calibration),
:mod:`~guardrails.gates.baseline` (paired bootstrap vs a baseline run or tag),
:mod:`~guardrails.gates.drift` (corpus drift vs the baseline).
"""

from guardrails.gates import acceptance, baseline, consistency, drift, fusion, known_bugs, slices

__all__ = ["acceptance", "baseline", "consistency", "drift", "fusion", "known_bugs", "slices"]
