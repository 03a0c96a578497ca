"""Guardrails test helpers: run selected checks on a run folder, reports kept in tmp."""

from __future__ import annotations

import pytest


@pytest.fixture
def run_selected(tmp_path):
    """``run_selected(run, *names, engine="pandas", **params)`` -> {name: CheckResult}.

    Reports (GX results) go to a private tmp folder, never into the run folder.
    """
    from guardrails import RunContext, criteria_from_dict, run_checks

    def run(run_dir, *names, engine="pandas", params=None):
        params = params or {}
        criteria = criteria_from_dict({"version": 1,
                                       "checks": {n: params.get(n, {}) for n in names}})
        ctx = RunContext(run_dir, report_dir=tmp_path / f"report_{engine}", engine=engine)
        return {r.name: r for r in run_checks(ctx, criteria)}

    return run


def failed_rules(result) -> set[str]:
    """Rule ids a data/audit check reported as failed."""
    return set(result.observed["failed_rules"])
