"""Great Expectations' own Data Docs pages for the suites a command ran (``--data-docs``).

Each validation result is rendered by GX's renderer (``ValidationResultsPageRenderer`` +
``DefaultJinjaPageView``, what a GX Data Docs site shows for one validation) into
``REPORT_DIR/gx/docs/<suite>.html``; :func:`write_index` links them from ``index.html``.
No Data Docs *site* is configured: the context stays ephemeral and writes nothing itself.
GX's page template loads Bootstrap and friends from public CDNs, so offline the pages
show their tables unstyled; the JSON beside them (``gx/<suite>.json``) is the evidence.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from profy.contract.atomic import atomic_write_text

__all__ = ["DOCS_DIR", "render_page", "write_index", "write_page"]

DOCS_DIR = Path("gx") / "docs"  # under the report folder


def render_page(validation_result: Any) -> str:
    """One GX ``ExpectationSuiteValidationResult`` as a Data Docs HTML page."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(validation_result))


def write_page(report_dir: str | Path, name: str, validation_result: Any) -> Path:
    """Write the page of one suite's result to ``report_dir/gx/docs/<name>.html``."""
    return atomic_write_text(Path(report_dir) / DOCS_DIR / f"{name}.html",
                             render_page(validation_result))


def write_index(report_dir: str | Path) -> Path | None:
    """``report_dir/gx/docs/index.html`` linking every page under ``report_dir`` (sub-folders
    of a multi-path audit included); ``None`` when no page was written."""
    root = Path(report_dir)
    pages = sorted(p for p in root.rglob("*.html")
                   if p.parent.parts[-2:] == DOCS_DIR.parts and p.name != "index.html")
    if not pages:
        return None
    index = root / DOCS_DIR / "index.html"
    items = "\n".join(
        f'<li><a href="{html.escape(Path(*[".."] * 2, p.relative_to(root)).as_posix())}">'
        f"{html.escape(p.relative_to(root).as_posix())}</a></li>" for p in pages)
    return atomic_write_text(index, "<!doctype html>\n<meta charset='utf-8'>\n"
                             "<title>Great Expectations validation results</title>\n"
                             "<h1>Great Expectations validation results</h1>\n"
                             f"<ul>\n{items}\n</ul>\n")
