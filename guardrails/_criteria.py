"""Criteria files: which checks run, with which thresholds (YAML, strict).

    version: 1
    checks:
      gate.multimodal_f1: {min_mean: 0.78, max_std: 0.02}
      data.audio_stats: {}                 # declared defaults
      calibration.ece: {severity: warning} # reported, never fails the verdict
      onnx.parity: {required: true}        # evidence that must be there (see below)
      drift.audio_stats: false             # listed but off

Only listed checks run. Each key under a check must be one of the parameters the
check declares (:func:`~guardrails._registry.register`), ``severity`` or ``required``;
unknown checks and keys are errors, and a value must have its default's type (an int
where a float is declared is accepted). ``null`` is accepted only where the default is
``null`` (e.g. ``onnx.latency.max_batch1_ms``: no limit); elsewhere it would only crash
the check later. A parameter the check declares ``choices`` for must be one of them.

``required: true`` turns a skip into a failure: a required check that would skip
(its evidence is absent, e.g. no ``onnx/`` in the run) fails with ``missing evidence:
<what is missing and the command that produces it>``. Without it a skip is listed but
never fails the verdict.

Profiles: ``load_criteria("dev")`` reads the named profile ``criteria/dev.yaml`` shipped
with guardrails (any name of :func:`profiles`); a path to a file works as before.
``default`` is the release gate (the improvement plan's acceptance criteria, DESIGN.md
section 4, with the ONNX checks and the smoke replay required); ``dev`` is the
pre-export inner-loop profile (the same checks, nothing required: absent evidence
skips). A file may start from another with ``extends: <profile or path>``: its
``checks`` then change the base's per check (keys of a mapping override the base's
keys, ``false`` drops the check), so a profile does not drift from the one it extends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardrails._registry import load_all_checks
from guardrails._result import SEVERITIES
from guardrails.errors import BadInputError, CriteriaError

__all__ = ["CRITERIA_DIR", "DEFAULT_CRITERIA", "Criteria", "criteria_from_dict",
           "load_criteria", "profiles", "resolve_criteria_path"]

CRITERIA_DIR = Path(__file__).parent / "criteria"
DEFAULT_CRITERIA = CRITERIA_DIR / "default.yaml"
CRITERIA_VERSION = 1
_MAX_EXTENDS = 8  # a longer chain is a loop or a mistake


@dataclass(frozen=True)
class Criteria:
    """Resolved criteria: check name -> full parameter dict, severities, required checks."""

    source: str
    checks: dict[str, dict[str, Any]]
    severities: dict[str, str]
    required: frozenset[str] = frozenset()


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
    unknown_top = set(raw) - {"version", "checks", "extends"}
    if unknown_top:
        raise CriteriaError(f"{source}: unknown top-level key(s) {sorted(unknown_top)}")
    if raw.get("version") != CRITERIA_VERSION:
        raise CriteriaError(f"{source}: version must be {CRITERIA_VERSION}, "
                            f"got {raw.get('version')!r}")
    if "extends" in raw:
        raise CriteriaError(f"{source}: 'extends' needs a file (load_criteria), not a dict")
    listed = raw.get("checks")
    if not isinstance(listed, dict) or not listed:
        raise CriteriaError(f"{source}: 'checks' must be a non-empty mapping of check names")
    checks: dict[str, dict[str, Any]] = {}
    severities: dict[str, str] = {}
    required: set[str] = set()
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
            if key == "required":
                if not isinstance(value, bool):
                    raise CriteriaError(f"{source}: {name}.required must be true or false, "
                                        f"got {value!r}")
                if value:
                    required.add(name)
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
    return Criteria(source, checks, severities, frozenset(required))


def profiles() -> list[str]:
    """Names of the criteria profiles shipped with guardrails (``criteria/*.yaml``)."""
    return sorted(p.stem for p in CRITERIA_DIR.glob("*.yaml"))


def resolve_criteria_path(spec: str | Path | None) -> Path:
    """The file ``spec`` names: a path to a file, else a profile name (``dev`` ->
    ``criteria/dev.yaml``). (Default: ``criteria/default.yaml``)

    Raises:
        BadInputError: neither an existing file nor a known profile.
    """
    if spec is None:
        return DEFAULT_CRITERIA
    path = Path(spec)
    if path.is_file():
        return path
    text = str(spec)
    if text and "/" not in text and "\\" not in text and not path.suffix:
        named = CRITERIA_DIR / f"{text}.yaml"
        if named.is_file():
            return named
    raise BadInputError(path, "criteria file not found (a path to a YAML file, or a "
                              f"profile: {', '.join(profiles())})")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CriteriaError(f"{path}: not valid YAML ({exc})") from None


def _raw_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of ``path`` with its ``extends`` chain merged in (base first)."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    if len(seen) >= _MAX_EXTENDS or path.resolve() in seen:
        raise CriteriaError(f"{path}: 'extends' loops or nests deeper than {_MAX_EXTENDS}")
    base_spec = raw["extends"]
    if not isinstance(base_spec, str) or not base_spec:
        raise CriteriaError(f"{path}: extends must name a profile or a file, got {base_spec!r}")
    base_path = Path(base_spec)
    if not base_path.is_absolute() and (path.parent / base_path).is_file():
        base_path = path.parent / base_path  # a file beside this one
    else:
        base_path = resolve_criteria_path(base_spec)
    base = _raw_with_bases(base_path, (*seen, path.resolve()))
    if not isinstance(base, dict) or not isinstance(base.get("checks"), dict):
        raise CriteriaError(f"{base_path}: extended by {path}, but has no 'checks' mapping")
    mine = raw.get("checks") or {}
    if not isinstance(mine, dict):
        raise CriteriaError(f"{path}: 'checks' must be a mapping of check names")
    merged = dict(base["checks"])
    for name, body in mine.items():
        old = merged.get(name)
        if isinstance(body, dict) and isinstance(old, dict):
            merged[name] = {**old, **body}
        elif isinstance(body, dict) and old in (None, True):
            merged[name] = dict(body)
        else:
            merged[name] = body
    out = {k: v for k, v in raw.items() if k != "extends"}
    out["checks"] = merged
    return out


def load_criteria(path: str | Path | None = None) -> Criteria:
    """Load and validate a criteria file or named profile (:func:`resolve_criteria_path`),
    following ``extends``. (Default: the release gate, ``criteria/default.yaml``)

    Raises:
        BadInputError: no such file or profile.
        CriteriaError: invalid content (unknown check or key, wrong type, bad extends).
    """
    path = resolve_criteria_path(path)
    return criteria_from_dict(_raw_with_bases(path), str(path))
