"""Guardrails: Profy's torch-free release gate.

It reads the artifacts a run writes (schemas in :mod:`profy.schemas`) and never
imports torch or any training code, so it runs in a slim container against any run.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
