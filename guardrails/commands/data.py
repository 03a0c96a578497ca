"""``guardrails data RUN``: the data-quality suites (Great Expectations) on one run.

A missing or unreadable artifact is bad input here (exit 2, naming the file).
"""

from __future__ import annotations

from guardrails.commands._verdict import VerdictCommand, run_argument, run_folder
from guardrails.commands.ci import category_outcome

__all__ = ["COMMAND", "add_parser"]

COMMAND = VerdictCommand(
    "data", help="data-quality suites: audio stats, normalization (leakage gate), splits",
    selects="data", target_arguments=run_argument, target=run_folder,
    run=lambda job: category_outcome(job, command="data", categories=["data"],
                                     raise_artifact_errors=True),
    data_docs=True)
add_parser = COMMAND.add_parser
