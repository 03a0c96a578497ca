"""Guardrails: Profy's torch-free release gate.

It reads the artifacts a run writes (schemas in :mod:`profy.contract.schemas`) and never
imports torch or any training code, so it runs in a slim container against any run.

    from guardrails import RunContext, load_criteria, run_checks

    results = run_checks(RunContext("runs/experiment_..."), load_criteria())
    failed = [r for r in results if r.fails_verdict]
"""

from guardrails._context import RunContext, read_parquet
from guardrails._criteria import DEFAULT_CRITERIA, Criteria, criteria_from_dict, load_criteria
from guardrails._registry import REGISTRY, CheckSpec, load_all_checks, register, run_checks
from guardrails._result import CheckResult
from guardrails.errors import ArtifactError, BadInputError, CriteriaError, GuardrailsError

__version__ = "0.1.0"
__all__ = [
    "DEFAULT_CRITERIA",
    "REGISTRY",
    "ArtifactError",
    "BadInputError",
    "CheckResult",
    "CheckSpec",
    "Criteria",
    "CriteriaError",
    "GuardrailsError",
    "RunContext",
    "__version__",
    "criteria_from_dict",
    "load_all_checks",
    "load_criteria",
    "read_parquet",
    "register",
    "run_checks",
]
