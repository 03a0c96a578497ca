"""The verdict-command skeleton: one place for the steps every gate command shares.

A verdict command (``ci``, ``data``, ``audit``, ``onnx``, ``replay``, ``gate``) runs::

    target   = command.target(args)          # validate what is judged (exit 2 when bad)
    criteria = load_criteria(args.criteria)  # file or profile, strict
    command.prepare(job)                     # optional: overrides, a baseline, ...
    report   = report_dir_for(...)           # --report-dir, else TARGET/guardrails
    outcome  = command.run(job)              # the checks -> results, title, extra
    emit(...)                                # verdict.json, JUnit, Markdown, table
    command.after(job, results, console)     # optional: more tables, stderr lines

with ``--data-docs`` page rendering around ``run`` for the commands that run GX suites.
A command module declares only its hooks::

    COMMAND = VerdictCommand("data", help="...", selects="data",
                             target_arguments=run_argument, target=run_folder,
                             run=_run, data_docs=True)
    add_parser = COMMAND.add_parser

Exit codes: the verdict's (0 pass, 1 a check failed); bad input raises
:class:`~guardrails.errors.GuardrailsError`, which ``guardrails.cli`` turns into exit 2.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrails._targets import run_folder as _run_folder

if TYPE_CHECKING:
    from guardrails._criteria import Criteria
    from guardrails._result import CheckResult

__all__ = ["Job", "Outcome", "Target", "VerdictCommand", "add_data_docs_option",
           "add_output_options", "finish_data_docs", "report_dir_for", "run_argument",
           "run_folder", "run_verdict", "start_data_docs"]


def add_output_options(p: argparse.ArgumentParser, *, engine: bool = True, jobs: bool = True,
                       quiet_help: str = "do not print the verdict table") -> None:
    """``--criteria --report-dir --junit --markdown [--engine] --quiet [--jobs]``.

    ``engine=False`` (a command that runs no GX suite) also leaves GX results out of the
    ``--report-dir`` help; ``jobs=False`` for a command that runs its checks in turn.
    """
    p.add_argument("--criteria", metavar="FILE_OR_PROFILE",
                   help="criteria YAML selecting checks and thresholds, or a named profile: "
                        "default (the release gate: ONNX checks and smoke replay required) "
                        "or dev (pre-export inner loop: absent evidence skips)")
    p.add_argument("--report-dir", metavar="DIR",
                   help="where verdict.json, junit.xml, summary.md "
                        + ("and GX results go" if engine else "go") + " (default: RUN/guardrails)")
    p.add_argument("--junit", metavar="FILE", help="also write the JUnit XML here")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown summary here")
    if engine:
        p.add_argument("--engine", choices=("pandas", "spark"), default="pandas",
                       help="engine for the GX suites and audits (default: pandas)")
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    if jobs:
        p.add_argument("--jobs", type=int, default=2, metavar="N",
                       help="2 (default) overlaps table checks with ONNX inference, then runs "
                            "the timed checks alone; 1 runs every check in turn")


def add_data_docs_option(p: argparse.ArgumentParser) -> None:
    """``--data-docs``, for the commands that run GX suites (data, audit, ci)."""
    p.add_argument("--data-docs", action="store_true",
                   help="also render GX's Data Docs page of every suite into "
                        "REPORT_DIR/gx/docs/ (index.html links them)")


def run_argument(p: argparse.ArgumentParser) -> None:
    """The ``RUN`` positional argument."""
    p.add_argument("run", metavar="RUN", help="run folder (runs/experiment_...)")


def start_data_docs(args: argparse.Namespace) -> None:
    """Turn page rendering on before the checks run (a forked lane inherits it)."""
    if getattr(args, "data_docs", False):
        from guardrails.checks._gx import enable_data_docs

        enable_data_docs()


def finish_data_docs(args: argparse.Namespace, report_dir: Path) -> str | None:
    """Link the pages from ``index.html``; its path (for the verdict), or None."""
    if not getattr(args, "data_docs", False):
        return None
    from guardrails.checks._gx import enable_data_docs
    from guardrails.checks._gx_docs import write_index

    enable_data_docs(False)  # one command's setting, not the process's (tests call main twice)
    index = write_index(report_dir)
    return None if index is None else str(index)


def report_dir_for(default_base: Path, explicit: str | None) -> Path:
    """The report folder: ``--report-dir`` or ``default_base/guardrails``, checked writable.

    Run folders may be mounted read-only; then the user must pass ``--report-dir``.
    """
    from guardrails.report._emit import writable_dir

    if explicit:
        return writable_dir(explicit)
    return writable_dir(Path(default_base) / "guardrails",
                        hint="the run folder may be read-only: pass --report-dir DIR")


@dataclass(frozen=True)
class Target:
    """What a command judges.

    Attributes:
        base: the folder whose ``guardrails/`` is the default report folder.
        run_dir: the run recorded in the verdict (None: several paths, or none).
        paths: every path named on the command line, for the command's own use.
    """

    base: Path
    run_dir: Path | None
    paths: tuple[Path, ...] = ()


def run_folder(args: argparse.Namespace) -> Target:
    """The target of a ``RUN`` command: an existing run folder (else exit 2)."""
    run = _run_folder(Path(args.run))
    return Target(run, run.resolve(), (run,))


@dataclass
class Job:
    """One command invocation as its hooks see it (``report_dir`` is set before ``run``)."""

    args: argparse.Namespace
    target: Target
    criteria: Criteria
    report_dir: Path = Path()
    state: dict[str, Any] = field(default_factory=dict)  # what ``prepare`` hands ``run``


@dataclass
class Outcome:
    """What a command's ``run`` hook returns: the results and how the verdict names them."""

    results: list[CheckResult]
    title: str
    extra: dict[str, Any]


@dataclass(frozen=True)
class VerdictCommand:
    """A verdict command: its parser and the hooks the skeleton (:func:`run_verdict`) calls.

    Attributes:
        name: the subcommand (``guardrails NAME``).
        help: its one-line help.
        selects: the checks it runs, for "criteria selects no ... checks" (exit 2).
        target_arguments: adds the positional argument(s) naming the target.
        target: validates the target named on the command line (raises BadInputError).
        run: runs the checks of a prepared :class:`Job`.
        options: adds the command's own options (after the shared ones).
        prepare: changes the job after the criteria load, before the report folder.
        after: runs after the verdict is written (``console`` is None under --quiet).
        data_docs: the command runs GX suites: ``--data-docs`` is offered.
        output: keyword arguments of :func:`add_output_options`.
    """

    name: str
    help: str
    selects: str
    target_arguments: Callable[[argparse.ArgumentParser], None]
    target: Callable[[argparse.Namespace], Target]
    run: Callable[[Job], Outcome]
    options: Callable[[argparse.ArgumentParser], None] | None = None
    prepare: Callable[[Job], None] | None = None
    after: Callable[[Job, list[Any], Any], None] | None = None
    data_docs: bool = False
    output: dict[str, Any] = field(default_factory=dict)

    def add_parser(self, sub: Any) -> None:
        """Add ``guardrails NAME`` to the subparsers ``sub``."""
        p = sub.add_parser(self.name, help=self.help)
        self.target_arguments(p)
        add_output_options(p, **self.output)
        if self.data_docs:
            add_data_docs_option(p)
        if self.options is not None:
            self.options(p)
        p.set_defaults(func=functools.partial(run_verdict, self))


def run_verdict(command: VerdictCommand, args: argparse.Namespace) -> int:
    """The skeleton (module docstring); returns the verdict's exit code."""
    from guardrails._criteria import load_criteria
    from guardrails.errors import BadInputError
    from guardrails.report import emit
    from profy.contract.console import make_console

    started = time.perf_counter()
    target = command.target(args)
    job = Job(args, target, load_criteria(args.criteria))
    if command.prepare is not None:
        command.prepare(job)
    job.report_dir = report_dir_for(target.base, args.report_dir)
    if command.data_docs:
        start_data_docs(args)
    outcome = command.run(job)
    data_docs = finish_data_docs(args, job.report_dir) if command.data_docs else None
    if not outcome.results:
        raise BadInputError(Path(job.criteria.source), f"selects no {command.selects} checks")
    console = None if args.quiet else make_console()
    code = emit(outcome.results, title=outcome.title, report_dir=job.report_dir,
                junit=args.junit, markdown=args.markdown,
                console=False if console is None else console, run_dir=target.run_dir,
                criteria_source=job.criteria.source, elapsed_s=time.perf_counter() - started,
                more_files={"data_docs": data_docs}, extra=outcome.extra)
    if command.after is not None:
        command.after(job, outcome.results, console)
    return code
