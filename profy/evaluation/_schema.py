"""The declared shape of ``complete_results.json``, and a small JSON-Schema checker.

The schema is an ordinary JSON-Schema (draft 2020-12) dict, so any standard
validator can read it; Profy checks it with :func:`schema_problem`, which covers the
subset used here (``type``, ``const``, ``enum``, ``required``, ``properties``,
``additionalProperties``, ``propertyNames``, ``minProperties``, ``items``,
``minItems``, ``maxItems``, ``minimum``, ``maximum``) and keeps the torch-free gate
image free of a ``jsonschema`` dependency. Cross-field rules (fold count, means,
scores recomputed from confusion matrices) live in ``results.py``.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypedDict

from profy.contract.schemas import LABELS, MODES, STD_DDOF

__all__ = [
    "COMPLETE_RESULTS_SCHEMA",
    "ClassScores",
    "CompleteResults",
    "FoldResult",
    "ModeResult",
    "SliceResult",
    "schema_problem",
]

RESULTS_SCHEMA_VERSION = "1"
SUMMARY_METRICS = ("accuracy", "macro_f1", "weighted_f1", "ece")  # per fold, mean and std


class ClassScores(TypedDict):
    precision: float
    recall: float
    f1: float
    support: int  # true takes of this class in the fold


class FoldResult(TypedDict):
    n_samples: int  # held-out takes scored in this fold
    accuracy: float
    macro_f1: float  # unweighted mean of the two per-class F1 (the headline metric)
    weighted_f1: float  # support-weighted mean; never report it as macro
    ece: float  # expected calibration error of P(pro), ``ece_n_bins`` equal-width bins
    per_class: dict[str, ClassScores]  # "amateur", "pro"
    confusion_matrix: list[list[int]]  # rows true, columns predicted, order LABELS


class SliceResult(TypedDict):
    macro_f1: float  # pooled over folds; labels [0, 1] even if the slice has one class
    accuracy: float
    n_samples: int


class ModeResult(TypedDict):
    n_samples: int  # sum over folds
    folds: dict[str, FoldResult]  # "0" .. str(n_folds - 1)
    mean: dict[str, float]  # SUMMARY_METRICS -> mean over folds
    std: dict[str, float]  # SUMMARY_METRICS -> np.std(folds, ddof=std_ddof)
    per_piece: dict[str, SliceResult]  # empty when no slices were given
    per_piece_kind: dict[str, SliceResult]
    warnings: list[str]


class CompleteResults(TypedDict):
    schema_version: str
    run: dict[str, Any]  # config_hash, git_hash, date, versions, seed, ... (run metadata)
    n_folds: int
    class_names: list[str]  # LABELS: index = class id
    zero_division: float  # value of 0/0 precision/recall/F1 in per-class scores
    ece_n_bins: int
    std_ddof: int  # 0: population std over folds, numpy's default
    std_warning: float  # threshold of the std(macro F1) warning
    higher_is_better: dict[str, bool]  # from the metric registry
    metric_versions: dict[str, str]
    modes: dict[str, ModeResult]
    warnings: list[str]  # every mode's warnings, prefixed "<mode>: "


_UNIT = {"type": "number", "minimum": 0.0, "maximum": 1.0}
_COUNT = {"type": "integer", "minimum": 0}
_POSITIVE = {"type": "integer", "minimum": 1}
_STRINGS = {"type": "array", "items": {"type": "string"}}


def _record(props: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these keys."""
    return {"type": "object", "required": list(props), "properties": props,
            "additionalProperties": False}


def _per_metric(value: dict[str, Any]) -> dict[str, Any]:
    return _record({name: value for name in SUMMARY_METRICS})


_SLICE = _record({"macro_f1": _UNIT, "accuracy": _UNIT, "n_samples": _POSITIVE})
_FOLD = _record({
    "n_samples": _POSITIVE,
    **{name: _UNIT for name in SUMMARY_METRICS},
    "per_class": _record({name: _record({"precision": _UNIT, "recall": _UNIT, "f1": _UNIT,
                                         "support": _COUNT}) for name in LABELS}),
    "confusion_matrix": {"type": "array", "minItems": len(LABELS), "maxItems": len(LABELS),
                         "items": {"type": "array", "minItems": len(LABELS),
                                   "maxItems": len(LABELS), "items": _COUNT}},
})
_MODE = _record({
    "n_samples": _POSITIVE,
    "folds": {"type": "object", "minProperties": 1, "additionalProperties": _FOLD,
              "propertyNames": {"pattern": r"^(0|[1-9][0-9]*)$"}},
    "mean": _per_metric(_UNIT),
    "std": _per_metric({"type": "number", "minimum": 0.0, "maximum": 1.0}),
    "per_piece": {"type": "object", "additionalProperties": _SLICE},
    "per_piece_kind": {"type": "object", "additionalProperties": _SLICE},
    "warnings": _STRINGS,
})

COMPLETE_RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Profy complete_results.json",
    **_record({
        "schema_version": {"const": RESULTS_SCHEMA_VERSION},
        "run": {"type": "object", "required": ["config_hash", "git_hash", "date", "versions",
                                               "seed"],
                "properties": {"config_hash": {"type": "string"},
                               "git_hash": {"type": ["string", "null"]},
                               "date": {"type": "string"}, "versions": {"type": "object"},
                               "seed": {"type": "integer"}}},
        "n_folds": _POSITIVE,
        "class_names": {"const": list(LABELS)},
        "zero_division": {"enum": [0.0, 1.0]},
        "ece_n_bins": _POSITIVE,
        "std_ddof": {"const": STD_DDOF},
        "std_warning": {"type": "number", "minimum": 0.0},
        "higher_is_better": _per_metric({"type": "boolean"}),
        "metric_versions": _per_metric({"type": "string"}),
        "modes": {"type": "object", "minProperties": 1, "additionalProperties": _MODE,
                  "propertyNames": {"enum": list(MODES)}},
        "warnings": _STRINGS,
    }),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON booleans are not numbers, although Python's bool is an int
    return isinstance(value, _TYPES[name])


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true != 1, although Python says True == 1.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) \
        else a == b


def schema_problem(value: Any, schema: dict[str, Any], where: str = "") -> str | None:
    """The first place where ``value`` breaks ``schema``, or ``None`` if it conforms.

    Args:
        value: a JSON value (dicts, lists, str, int, float, bool, None).
        schema: a JSON-Schema dict using the keywords listed in the module docstring.
        where: dotted path of ``value`` in the document, for the message.

    Returns:
        str | None: e.g. ``"modes.audio.folds.1.macro_f1: 1.3 is above the maximum 1.0"``.
    """
    at = where or "<root>"
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return f"{at}: expected {' or '.join(names)}, got {type(value).__name__} {value!r:.60}"
    if "const" in schema and not _equal(value, schema["const"]):
        return f"{at}: expected {schema['const']!r}, got {value!r:.60}"
    if "enum" in schema and not any(_equal(value, e) for e in schema["enum"]):
        return f"{at}: {value!r:.60} is not one of {schema['enum']}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{at}: {value} is not a finite number"
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{at}: {value} is below the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{at}: {value} is above the maximum {schema['maximum']}"
    if isinstance(value, dict):
        return _object_problem(value, schema, where)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems",
                                                                            len(value)):
            return f"{at}: has {len(value)} items, expected " \
                   f"{schema.get('minItems', 0)}..{schema.get('maxItems', 'any')}"
        if "items" in schema:
            for i, item in enumerate(value):
                if problem := schema_problem(item, schema["items"], f"{where}[{i}]"):
                    return problem
    return None


def _object_problem(value: dict[str, Any], schema: dict[str, Any], where: str) -> str | None:
    at = where or "<root>"
    prefix = f"{where}." if where else ""
    for key in schema.get("required", []):
        if key not in value:
            return f"{prefix}{key}: missing key"
    if len(value) < schema.get("minProperties", 0):
        return f"{at}: has {len(value)} keys, expected at least {schema['minProperties']}"
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames")
    for key, item in value.items():
        if not isinstance(key, str):
            return f"{at}: key {key!r} is not a string"
        if names and (problem := _name_problem(key, names)):
            return f"{prefix}{key}: {problem}"
        if key in props:
            sub = props[key]
        elif extra is False:
            return f"{prefix}{key}: unexpected key (allowed: {', '.join(props)})"
        elif isinstance(extra, dict):
            sub = extra
        else:
            continue
        if problem := schema_problem(item, sub, f"{prefix}{key}"):
            return problem
    return None


def _name_problem(key: str, names: dict[str, Any]) -> str | None:
    if "enum" in names and key not in names["enum"]:
        return f"key is not one of {names['enum']}"
    if "pattern" in names and not re.search(names["pattern"], key):
        return f"key does not match {names['pattern']!r}"
    return None
