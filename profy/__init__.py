"""Profy: train, evaluate and release the pro/amateur piano classifier.

Importing ``profy`` is cheap and never imports torch: the torch-free ``guardrails``
package reads ``profy.contract.schemas`` through it.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
