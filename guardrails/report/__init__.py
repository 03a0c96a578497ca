"""Verdict outputs: ``verdict.json``, JUnit XML, a Markdown summary and a terminal table.

    from guardrails.report import emit

    code = emit(results, title="guardrails ci", report_dir=run / "guardrails",
                junit="junit.xml", markdown="summary.md")   # 0 pass, 1 a check failed

Every file is written atomically; ``verdict.json`` validates against
``verdict.schema.json`` (:data:`SCHEMA_PATH`).
"""

from guardrails.report._emit import emit
from guardrails.report._json import (
    SCHEMA_PATH,
    VERDICT_KIND,
    VERDICT_SCHEMA_VERSION,
    load_schema,
    summarize,
    verdict_dict,
)
from guardrails.report._junit import junit_xml
from guardrails.report._markdown import markdown_summary
from guardrails.report._table import print_table

__all__ = [
    "SCHEMA_PATH",
    "VERDICT_KIND",
    "VERDICT_SCHEMA_VERSION",
    "emit",
    "junit_xml",
    "load_schema",
    "markdown_summary",
    "print_table",
    "summarize",
    "verdict_dict",
]
