"""The check registry: every check is a function registered with its metadata.

    @register("data.audio_stats", category="data",
              params={"min_nonzero_frames": 120, "mostly": 1.0},
              description="audio_stats.parquet: frames, finiteness, SNR bounds")
    def audio_stats(ctx: RunContext, *, min_nonzero_frames: int, mostly: float) -> CheckResult:
        ...

``params`` declares every threshold a criteria file may set, with its default; a
criteria file that names an unknown check or key is refused. ``applies`` (optional)
returns ``None`` when the check applies to a run, or a reason to skip it that says what
is absent and the command that produces it (e.g. "no onnx/ in RUN: run `profy export
RUN`"). ``applies(ctx)`` sees the run only; ``applies(ctx, params)`` (two positional
parameters) also gets the check's parameters from the criteria, so a skip test honours
the criteria's own settings (a replay's ``registry`` and ``baseline_tag``).

Required evidence: a check the criteria mark ``required: true`` never skips. Its skip
reason (from ``applies``, or a skipped result the check returns itself, e.g. a first
benchmark with no reference yet) becomes a failing result ``missing evidence: <reason>``
(:func:`require`). Other skips are listed, never a failure.

``choices`` (optional) names the allowed values of enum-like string parameters (e.g.
``{"rule": ("worse", "non_inferior")}``); a criteria file setting another is refused
when it is loaded, not when the check runs.

A check returns one :class:`CheckResult` or a list of them (e.g. one per mode). A
missing or corrupt artifact raised as :class:`ArtifactError` inside a check becomes a
failing result naming the file, unless the caller asks for it to be raised. Any other
exception a check raises that is not a :class:`GuardrailsError` (a ``KeyError`` on a
dropped column, a ``ValueError`` on a label of 7) is bad evidence too, whatever the
caller asked: a failing result of severity ``error`` (whatever the criteria say: the
check reached no finding) naming the check and the exception, with the traceback in its
details. Other :class:`GuardrailsError` s signal misuse and propagate (exit 2).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from guardrails._lanes import ForkedCall
from guardrails._result import CATEGORIES, CheckResult
from guardrails.errors import ArtifactError, GuardrailsError

if TYPE_CHECKING:
    from guardrails._context import RunContext

__all__ = ["CHECK_PACKAGES", "REGISTRY", "Check", "CheckSpec", "Selection", "as_results",
           "load_all_checks", "register", "require", "run_checks", "skip_reason"]

# Packages whose import registers their checks (each package's __init__ imports its modules).
CHECK_PACKAGES = ("guardrails.checks", "guardrails.gates", "guardrails.replay")
LANES = ("tables", "inference", "timed")


class Check(Protocol):
    """A check: the run's context, then the criteria's parameters by keyword."""

    def __call__(self, ctx: RunContext, /, **params: Any) -> CheckResult | list[CheckResult]:
        ...


class Selection(Protocol):
    """What :func:`run_checks` reads of the criteria (:class:`guardrails._criteria.Criteria`
    has it; declared here so the registry needs nothing of the criteria module, which
    validates against the registry)."""

    @property
    def checks(self) -> Mapping[str, Mapping[str, Any]]: ...  # name -> full parameters

    @property
    def severities(self) -> Mapping[str, str]: ...

    @property
    def required(self) -> frozenset[str]: ...


CheckFunc = Check
_C = TypeVar("_C", bound=Callable[..., Any])


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its name, category, parameters with defaults, and function."""

    name: str
    category: str
    func: CheckFunc
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    applies: Callable[..., str | None] | None = None
    lane: str = "tables"
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    applies_params: bool = False  # applies(ctx, params) rather than applies(ctx)


REGISTRY: dict[str, CheckSpec] = {}


def register(name: str, *, category: str, params: Mapping[str, Any] | None = None,
             description: str = "",
             applies: Callable[..., str | None] | None = None,
             lane: str = "tables", choices: Mapping[str, Sequence[Any]] | None = None
             ) -> Callable[[_C], _C]:
    """Decorator registering ``func(ctx, **params)`` as check ``name`` (arguments: see above)."""
    if category not in CATEGORIES:
        raise ValueError(f"check {name!r}: category {category!r} is not one of {CATEGORIES}")
    if lane not in LANES:
        raise ValueError(f"check {name!r}: lane {lane!r} is not one of {LANES}")
    allowed = {key: tuple(values) for key, values in (choices or {}).items()}
    for key, values in allowed.items():
        if key not in (params or {}) or (params or {})[key] not in values:
            raise ValueError(f"check {name!r}: choices for {key!r} need a declared parameter "
                             f"whose default is one of {values}")

    def decorate(func: _C) -> _C:
        if name in REGISTRY and REGISTRY[name].func is not func:
            raise ValueError(f"check {name!r} is registered twice")
        REGISTRY[name] = CheckSpec(name, category, func, dict(params or {}),
                                   description or (func.__doc__ or "").strip().split("\n")[0],
                                   applies, lane, allowed, _takes_params(applies))
        return func

    return decorate


def _takes_params(applies: Callable[..., Any] | None) -> bool:
    """Whether ``applies`` takes ``(ctx, params)`` (two positional parameters)."""
    if applies is None:
        return False
    try:
        sig = inspect.signature(applies)
    except (TypeError, ValueError):
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)


def skip_reason(spec: CheckSpec, ctx: RunContext, params: Mapping[str, Any]) -> str | None:
    """``spec.applies`` on ``ctx`` (with the criteria's ``params`` when it takes them)."""
    if spec.applies is None:
        return None
    return spec.applies(ctx, dict(params)) if spec.applies_params else spec.applies(ctx)


def require(results: list[CheckResult], *, required: bool) -> list[CheckResult]:
    """Required evidence: each skipped result of a required check becomes a failure.

    The failure keeps the check's name, category and severity; its message is
    ``missing evidence: <the skip reason>`` (the reason says what is absent and the
    command that produces it), and ``details`` records ``required`` and the reason.
    """
    if not required:
        return results
    out = []
    for r in results:
        if not r.skipped:
            out.append(r)
            continue
        reason = r.message[len("skipped: "):] if r.message.startswith("skipped: ") else r.message
        out.append(dataclasses.replace(
            r, passed=False, skipped=False, observed="missing evidence",
            expected="required evidence (criteria: required: true)",
            message=f"missing evidence: {reason}",
            details={**r.details, "required": True, "skip_reason": reason}))
    return out


def load_all_checks() -> dict[str, CheckSpec]:
    """Import every check package (registering its checks) and return the registry."""
    for package in CHECK_PACKAGES:
        importlib.import_module(package)
    return REGISTRY


def as_results(name: str, out: Any) -> list[CheckResult]:
    """A check's return value as a list of results.

    Raises:
        GuardrailsError: the check returned something that is not a CheckResult (misuse).
    """
    results = out if isinstance(out, list) else [out]
    for result in results:
        if not isinstance(result, CheckResult):
            raise GuardrailsError(f"check {name!r} returned {type(result).__name__}, "
                                  "not a CheckResult")
    return results


def run_checks(ctx: RunContext, criteria: Selection, *, categories: Iterable[str] | None = None,
               names: Iterable[str] | None = None, raise_artifact_errors: bool = False,
               jobs: int = 1) -> list[CheckResult]:
    """Run the checks ``criteria`` selects (optionally narrowed) on one run.

    Args:
        ctx: the run being judged.
        criteria: which checks run, with which thresholds and severities.
        categories: only checks in these categories. (Default: all)
        names: only these check names. (Default: all the criteria selects)
        raise_artifact_errors: re-raise a missing/corrupt artifact as bad input
            (single-purpose commands) instead of recording a failing check (``ci``).
        jobs: 1 runs the checks one after another in criteria order; 2 or more
            overlaps the tables and inference lanes (the latter in a forked child),
            then runs the timed lane alone (module docstring). (Default: 1)

    Returns:
        The results in criteria order, skipped checks included; a check the criteria
        require fails instead of skipping (:func:`require`).
    """
    load_all_checks()
    wanted_categories = set(categories) if categories is not None else None
    wanted_names = set(names) if names is not None else None
    slots: list[list[CheckResult]] = []
    lanes: dict[str, list[tuple[int, CheckSpec, Mapping[str, Any], str, bool]]] = {
        lane: [] for lane in LANES}
    required = getattr(criteria, "required", frozenset())
    for name, params in criteria.checks.items():
        spec = REGISTRY[name]
        if wanted_categories is not None and spec.category not in wanted_categories:
            continue
        if wanted_names is not None and name not in wanted_names:
            continue
        severity = criteria.severities.get(name, "error")
        reason = skip_reason(spec, ctx, params)
        slots.append([])
        if reason is not None:
            slots[-1] += require([CheckResult(name, spec.category, True, severity,
                                              message=f"skipped: {reason}", skipped=True)],
                                 required=name in required)
            continue
        lanes[spec.lane].append((len(slots) - 1, spec, params, severity, name in required))

    def run_lane(items: list[tuple[int, CheckSpec, Mapping[str, Any], str, bool]]
                 ) -> list[tuple[int, list[CheckResult]]]:
        return [(slot, require(_run_one(ctx, spec, params, severity, raise_artifact_errors),
                               required=needed))
                for slot, spec, params, severity, needed in items]

    if jobs <= 1:
        done = run_lane(sorted((item for lane in LANES for item in lanes[lane]),
                               key=lambda item: item[0]))
    else:
        inference = ForkedCall(lambda: run_lane(lanes["inference"]), name="inference",
                               encode=_lane_to_json, decode=_lane_from_json) \
            if lanes["inference"] else None
        try:
            done = run_lane(lanes["tables"])
        except BaseException:
            if inference is not None:
                inference.cancel()
            raise
        done += inference.result() if inference is not None else []
        done += run_lane(lanes["timed"])
    for slot, out in done:
        slots[slot] = out
    return [result for slot in slots for result in slot]


def _lane_to_json(done: list[tuple[int, list[CheckResult]]]) -> list[Any]:
    return [[slot, [result.to_dict() for result in out]] for slot, out in done]


def _lane_from_json(data: list[Any]) -> list[tuple[int, list[CheckResult]]]:
    return [(slot, [CheckResult.from_dict(d) for d in out]) for slot, out in data]


def _run_one(ctx: RunContext, spec: CheckSpec, params: Mapping[str, Any], severity: str,
             raise_artifact_errors: bool) -> list[CheckResult]:
    started = time.perf_counter()
    try:
        out = as_results(spec.name, spec.func(ctx, **params))
    except ArtifactError as exc:
        if raise_artifact_errors:
            raise
        out = [CheckResult(spec.name, spec.category, False, severity,
                           observed="missing evidence", expected="readable artifact",
                           message=str(exc), details={"path": str(exc.path)})]
    except GuardrailsError:
        raise  # misuse (bad criteria value, a check returning a non-result): exit 2
    except Exception as exc:  # noqa: BLE001 - bad evidence must fail the check, not the run
        share = time.perf_counter() - started
        # always an error: the criteria's severity grades a check's finding, and a check
        # that crashed found nothing - its state is unknown, which must not let a run pass
        return [dataclasses.replace(_crashed(spec, exc), duration_s=share)]
    share = (time.perf_counter() - started) / max(len(out), 1)
    # the criteria file decides the severity
    return [dataclasses.replace(result, severity=severity, duration_s=share) for result in out]


def _crashed(spec: CheckSpec, exc: Exception) -> CheckResult:
    """A failing error result for a check that raised on its evidence (details are plain
    strings: it may travel back from a forked lane, and it goes into verdict.json)."""
    # where the exception carries a file (OSError.filename, a ``path`` attribute), name it
    path = getattr(exc, "filename", None) or getattr(exc, "path", None)
    frames = traceback.extract_tb(exc.__traceback__)
    # the innermost guardrails frame says which check code met the bad value; pandas'
    # own frames below it do not
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    where = f"{ours[-1].filename}:{ours[-1].lineno} in {ours[-1].name}" if ours else ""
    text = str(exc)
    text = text if len(text) <= 300 else text[:297] + "..."
    message = (f"{spec.name} could not evaluate its evidence: {type(exc).__name__}: {text}"
               + (f" (file {path})" if path else "")
               + " - a schema-broken or inconsistent artifact? see details.traceback")
    details = {"exception": type(exc).__name__, "error": str(exc), "raised_at": where,
               "check": spec.description,
               "traceback": "".join(traceback.format_exception(type(exc), exc,
                                                                exc.__traceback__))}
    if path:
        details["path"] = str(path)
    return CheckResult(spec.name, spec.category, False, "error",
                       observed=f"error: {type(exc).__name__}",
                       expected="evidence readable with its declared schema",
                       message=message, details=details)
