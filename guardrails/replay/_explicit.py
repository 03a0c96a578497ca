"""One replay check run on request (``guardrails replay``), the model resolved by its tag.

Unlike ``guardrails ci RUN`` (which replays RUN's own exported models, the candidate), an
explicit replay resolves its model through the tag (``ctx.replay_by_tag``): the
scheduled replay of a release. Its ``applies`` is not consulted: an explicit replay that
cannot find its tag is bad input, not a skip. A check the criteria mark ``required``
fails instead of skipping (e.g. a first benchmark, which has no reference yet).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guardrails._context import RunContext
from guardrails._registry import Selection, as_results, load_all_checks, require
from guardrails._result import CheckResult
from guardrails.errors import ArtifactError

__all__ = ["REPLAY_CHECKS", "replay_results"]

REPLAY_CHECKS = {"smoke": "replay.smoke", "benchmark": "replay.benchmark",
                 "robustness": "replay.robustness"}


def replay_results(kind: str, target: Path, *, criteria: Selection,
                   overrides: Mapping[str, Any]) -> list[CheckResult]:
    """Run one replay check (``kind``: a key of :data:`REPLAY_CHECKS`) on ``target`` (a
    runs folder or a run); its parameters are the criteria's, then the non-None
    ``overrides`` it declares. Returns its results with the criteria's severity."""
    name = REPLAY_CHECKS[kind]
    spec = load_all_checks()[name]
    params = {**spec.params, **criteria.checks.get(name, {})}
    params.update({k: v for k, v in overrides.items() if k in spec.params and v is not None})
    severity = criteria.severities.get(name, "error")
    ctx = RunContext(target, replay_by_tag=True)
    try:
        results = as_results(name, spec.func(ctx, **params))
    except ArtifactError as exc:  # evidence missing or corrupt: a failing replay, named
        results = [CheckResult(name, "replay", False, observed="missing evidence",
                               expected="readable artifact", message=str(exc),
                               details={"path": str(exc.path)})]
    results = require(results, required=name in getattr(criteria, "required", ()))
    return [dataclasses.replace(r, severity=severity) for r in results]
