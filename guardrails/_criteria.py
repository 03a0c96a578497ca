"""Criteria files: which checks run, with which thresholds (YAML, strict).

    version: 1
    checks:
      gate.multimodal_f1: {min_mean: 0.78, max_std: 0.02}
      data.audio_stats: {}                 # declared defaults
      calibration.ece: {severity: warning} # reported, never fails the verdict
      drift.audio_stats: false             # listed but off

Only listed checks run. Each key under a check must be one of the parameters the
check declares (:func:`~guardrails._registry.register`) or ``severity``; unknown
checks and keys are errors, and a value must have its default's type (an int where a
float is declared is accepted). ``null`` is accepted only where the default is ``null``
(e.g. ``onnx.latency.max_batch1_ms``: no limit); elsewhere it would only crash the check
later. A parameter the check declares ``choices`` for must be one of them. The default
file encodes the improvement plan's acceptance criteria (DESIGN.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardrails._registry import load_all_checks
from guardrails._result import SEVERITIES
from guardrails.errors import BadInputError, CriteriaError

__all__ = ["DEFAULT_CRITERIA", "Criteria", "load_criteria"]

DEFAULT_CRITERIA = Path(__file__).parent / "criteria" / "default.yaml"
CRITERIA_VERSION = 1


@dataclass(frozen=True)
class Criteria:
    """Resolved criteria: check name -> full parameter dict, and severities."""

    source: str
    checks: dict[str, dict[str, Any]]
    severities: dict[str, str]


def _type_ok(default: Any, value: Any) -> bool:
    if default is None:  # an optional setting: null (off) or a value of the user's choice
        return True
    if value is None:
        return False
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def criteria_from_dict(raw: Any, source: str = "<dict>") -> Criteria:
    """Validate a parsed criteria mapping against the registry."""
    registry = load_all_checks()
    if not isinstance(raw, dict):
        raise CriteriaError(f"{source}: expected a mapping with 'version' and 'checks'")
    unknown_top = set(raw) - {"version", "checks"}
    if unknown_top:
        raise CriteriaError(f"{source}: unknown top-level key(s) {sorted(unknown_top)}")
    if raw.get("version") != CRITERIA_VERSION:
        raise CriteriaError(f"{source}: version must be {CRITERIA_VERSION}, "
                            f"got {raw.get('version')!r}")
    listed = raw.get("checks")
    if not isinstance(listed, dict) or not listed:
        raise CriteriaError(f"{source}: 'checks' must be a non-empty mapping of check names")
    checks: dict[str, dict[str, Any]] = {}
    severities: dict[str, str] = {}
    for name, body in listed.items():
        if name not in registry:
            raise CriteriaError(f"{source}: unknown check {name!r} "
                                f"(known: {', '.join(sorted(registry))})")
        if body is False:
            continue
        if body is None or body is True:
            body = {}
        if not isinstance(body, dict):
            raise CriteriaError(f"{source}: check {name!r} needs a mapping, true or false, "
                                f"got {body!r}")
        declared = registry[name].params
        choices = registry[name].choices
        params = dict(declared)
        for key, value in body.items():
            if key == "severity":
                if value not in SEVERITIES:
                    raise CriteriaError(f"{source}: {name}.severity must be one of "
                                        f"{SEVERITIES}, got {value!r}")
                severities[name] = value
                continue
            if key not in declared:
                raise CriteriaError(f"{source}: unknown key {name}.{key} "
                                    f"(declared: {', '.join(sorted(declared)) or 'none'})")
            if not _type_ok(declared[key], value):
                raise CriteriaError(f"{source}: {name}.{key} must be "
                                    f"{type(declared[key]).__name__}, got {value!r}"
                                    + (" (null is allowed only where the default is null)"
                                       if value is None else ""))
            if key in choices and value not in choices[key]:
                raise CriteriaError(f"{source}: {name}.{key} must be one of "
                                    f"{choices[key]}, got {value!r}")
            params[key] = value
        checks[name] = params
    return Criteria(source, checks, severities)


def load_criteria(path: str | Path | None = None) -> Criteria:
    """Load and validate a criteria file. (Default: the plan's acceptance criteria)"""
    path = Path(path) if path is not None else DEFAULT_CRITERIA
    if not path.is_file():
        raise BadInputError(path, "criteria file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CriteriaError(f"{path}: not valid YAML ({exc})") from None
    return criteria_from_dict(raw, str(path))
