"""JUnit XML: one ``<testcase>`` per check, so CI systems list every gate.

Layout (the de-facto schema Jenkins, GitLab and GitHub reporters read):

    <testsuites name=TITLE tests= failures= errors="0" skipped= time=>
      <testsuite name="guardrails.<category>" ...>
        <testcase classname="guardrails.<category>" name="<check>" time="...">
          <failure message="..." type="check failed">observed / expected / details</failure>
          <skipped message="..."/>
          <system-out>observed, expected, message (warnings are marked WARNING)</system-out>

A failed *warning* is not a ``<failure>`` (it does not fail the verdict) but is shown
as ``WARNING`` in the testcase output and counted in the suite's ``warnings`` property.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from guardrails._result import CheckResult, jsonable

__all__ = ["junit_xml"]


# Characters XML 1.0 forbids (control characters, lone surrogates, U+FFFE/U+FFFF): a check
# message quoting raw bytes must not make the whole report unparseable.
_XML_BAD = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _XML_BAD.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _fmt(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True, default=str)


def _evidence(result: CheckResult) -> str:
    lines = [f"status: {result.status.upper()}" + (" (WARNING: failed, severity warning)"
                                                   if result.status == "warn" else ""),
             f"observed: {_fmt(result.observed)}", f"expected: {_fmt(result.expected)}",
             f"message: {result.message}"]
    if result.details:
        lines.append(f"details: {json.dumps(jsonable(result.details), sort_keys=True, indent=1)}")
    return "\n".join(lines)


def _suite(parent: ET.Element, category: str, results: Sequence[CheckResult]) -> None:
    time_s = sum(r.duration_s or 0.0 for r in results)
    suite = ET.SubElement(parent, "testsuite", {
        "name": _x(f"guardrails.{category}"), "tests": str(len(results)),
        "failures": str(sum(r.status == "fail" for r in results)), "errors": "0",
        "skipped": str(sum(r.status == "skip" for r in results)), "time": f"{time_s:.6f}"})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "warnings",
                                      "value": str(sum(r.status == "warn" for r in results))})
    for result in results:
        case = ET.SubElement(suite, "testcase", {
            "classname": _x(f"guardrails.{category}"), "name": _x(result.name),
            "time": f"{result.duration_s or 0.0:.6f}"})
        if result.status == "fail":
            failure = ET.SubElement(case, "failure", {"message": _x(result.message or "failed"),
                                                      "type": "check failed"})
            failure.text = _x(_evidence(result))
        elif result.status == "skip":
            ET.SubElement(case, "skipped", {"message": _x(result.message or "skipped")})
        out = ET.SubElement(case, "system-out")
        out.text = _x(_evidence(result))


def junit_xml(results: Sequence[CheckResult], *, title: str) -> str:
    """The JUnit XML document (UTF-8 text with declaration) for ``results``.

    Args:
        results: check outcomes, in report order.
        title: the ``<testsuites name>`` (e.g. ``"guardrails ci runs/experiment_..."``).

    Returns:
        The XML text; one ``<testsuite>`` per category, in first-seen order.
    """
    by_category: dict[str, list[CheckResult]] = {}
    for result in results:
        by_category.setdefault(result.category, []).append(result)
    root = ET.Element("testsuites", {
        "name": _x(title), "tests": str(len(results)),
        "failures": str(sum(r.status == "fail" for r in results)), "errors": "0",
        "skipped": str(sum(r.status == "skip" for r in results)),
        "time": f"{sum(r.duration_s or 0.0 for r in results):.6f}"})
    for category, group in by_category.items():
        _suite(root, category, group)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
