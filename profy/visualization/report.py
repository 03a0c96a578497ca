"""``RUN/report.html``: one self-contained page per run (no network needed to view it).

Plots are embedded as base64 PNG and the CSS is inline, so the file renders from a CI
artifact store, an e-mail attachment or an air-gapped machine; evidence files are
linked relatively, so the links work wherever the run folder is copied.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from profy.contract.atomic import atomic_write_text
from profy.contract.layout import (
    AUDIO_STATS_FILE,
    CHECKPOINTS_DIR,
    COMPLETE_RESULTS_FILE,
    CONFIG_FILE,
    CONFIG_HASH_FILE,
    CONFUSION_DIR,
    EPOCHS_FILE,
    FEATURE_INDEX_FILE,
    FEATURES_DIR,
    GATE_LOG_FILE,
    MANIFEST_FILE,
    MODALITY_WEIGHTS_FILE,
    MODEL_SUMMARY_FILE,
    ONNX_DIR,
    PREDICTIONS_FILE,
    QUARANTINE_FILE,
    SPLITS_FILE,
)
from profy.contract.schemas import MODES
from profy.visualization._artifacts import (
    check_status,
    read_json,
    read_verdict,
    require_run,
    verdict_checks,
)
from profy.visualization.plots import PLOT_NAMES, write_plots

__all__ = ["EVIDENCE_FILES", "render_report", "write_report"]

# Run-folder files worth a link, in display order (only those present are listed).
EVIDENCE_FILES = (
    CONFIG_FILE, CONFIG_HASH_FILE, "training.log", COMPLETE_RESULTS_FILE,
    SPLITS_FILE, PREDICTIONS_FILE, MODALITY_WEIGHTS_FILE, GATE_LOG_FILE,
    AUDIO_STATS_FILE, EPOCHS_FILE, MANIFEST_FILE, MODEL_SUMMARY_FILE,
    f"{FEATURES_DIR}/{FEATURE_INDEX_FILE}", QUARANTINE_FILE,
)
_EVIDENCE_DIRS = ("guardrails", "norm_stats", CHECKPOINTS_DIR, ONNX_DIR, CONFUSION_DIR, "plots")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1180px;color:#1d2630;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid #d8dee4;
padding-bottom:4px;margin-top:28px}
.meta{color:#57606a;font-size:13px}code{font-size:12px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{background:#dafbe1;color:#116329;font-weight:600}
.fail{background:#ffebe9;color:#a40e26;font-weight:600}
.warn{background:#fff8c5;color:#7d4e00;font-weight:600}
.skip{background:#eaeef2;color:#57606a}
.banner{padding:10px 14px;border-radius:6px;font-size:15px;margin:12px 0}
.plots{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:flex-start}
figure{margin:12px 0 20px}figure img{max-width:100%;border:1px solid #d8dee4}
figcaption{font-size:13px;color:#57606a}ul{font-size:13px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "" if value is None else str(value)


def _verdict_html(verdict: dict | None, path: Path | None, run: Path, base: str) -> str:
    if verdict is None:
        return ('<div class="banner skip">not gated yet: no <code>guardrails/verdict.json</code>'
                ' in this run (run <code>guardrails ci RUN</code>, then <code>profy report RUN'
                '</code> again)</div>')
    checks = verdict_checks(verdict, path or "<verdict>")
    statuses = [check_status(c) for c in checks]
    failed = "fail" in statuses
    overall = verdict.get("verdict") or verdict.get("status") or ("fail" if failed else "pass")
    overall = str(overall).lower()
    css = "fail" if overall.startswith("fail") else "pass"
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("pass", "fail", "warn", "skip")
                       if statuses.count(s))
    rel = os.path.relpath(path, run) if path is not None else ""
    href, rel = _e(base + rel), _e(rel)
    rows = "".join(
        f'<tr><td class="{_e(s)}">{_e(s)}</td><td><code>{_e(c["name"])}</code></td>'
        f'<td>{_e(c.get("category", ""))}</td><td>{_e(_fmt(c.get("observed")))}</td>'
        f'<td>{_e(_fmt(c.get("expected")))}</td><td>{_e(c.get("message", ""))}</td></tr>'
        for c, s in zip(checks, statuses, strict=True))
    # skipped checks right under the verdict: not judged (no evidence), never a pass
    skipped = "".join(f'<li><code>{_e(c["name"])}</code>: {_e(c.get("message", ""))}</li>'
                      for c, s in zip(checks, statuses, strict=True) if s == "skip")
    skipped = (f'<p class="skipped"><b>Not judged</b> ({statuses.count("skip")} skipped: no '
               f'evidence, not a pass):</p><ul class="skipped">{skipped}</ul>'
               if skipped else "")
    return (f'<div class="banner {css}">verdict: {_e(overall.upper())} ({_e(counts)}) '
            f'&mdash; <a href="{href}">{rel}</a></div>{skipped}'
            '<table><tr><th>status</th><th>check</th><th>category</th><th>observed</th>'
            f'<th>expected</th><th>message</th></tr>{rows}</table>')


def _results_html(results: dict) -> str:
    modes = results.get("modes", {})
    order = [m for m in MODES if m in modes] + sorted(set(modes) - set(MODES))
    n_folds = max((len(modes[m].get("folds", {})) for m in order), default=0)
    head = "".join(f"<th>F1 fold {k}</th>" for k in range(n_folds))
    rows = []
    for mode in order:
        block = modes[mode]
        mean, std = block.get("mean", {}), block.get("std", {})

        def ms(key: str, mean: dict = mean, std: dict = std) -> str:
            if key not in mean:
                return "n/a"
            return f"{mean[key]:.3f} ± {std.get(key, float('nan')):.3f}"

        folds = block.get("folds", {})
        cells = "".join(
            f'<td class="num">{folds[str(k)]["macro_f1"]:.3f}</td>' if str(k) in folds
            else "<td>n/a</td>" for k in range(n_folds))
        rows.append(f"<tr><td>{_e(mode)}</td><td class='num'>{ms('macro_f1')}</td>"
                    f"<td class='num'>{ms('weighted_f1')}</td><td class='num'>"
                    f"{ms('accuracy')}</td><td class='num'>{ms('ece')}</td>{cells}"
                    f"<td class='num'>{_e(block.get('n_samples', ''))}</td></tr>")
    warnings = "".join(f"<li>{_e(w)}</li>" for w in results.get("warnings", []))
    return ("<table><tr><th>mode</th><th>macro F1</th><th>weighted F1</th><th>accuracy</th>"
            f"<th>ECE</th>{head}<th>takes</th></tr>{''.join(rows)}</table>"
            + (f"<p><b>Warnings</b></p><ul>{warnings}</ul>" if warnings else ""))


def _quarantine_html(run: Path, base: str) -> str:
    """The takes the run left out (``quarantine.json``): count, then one row per take."""
    path = run / QUARANTINE_FILE
    link = f'<a href="{_e(base + QUARANTINE_FILE)}">{QUARANTINE_FILE}</a>'
    if not path.is_file():
        return f"<p>no {QUARANTINE_FILE} in this run (it predates the quarantine record)</p>"
    doc = read_json(path)
    takes = doc.get("takes", []) if isinstance(doc, dict) else []
    if not takes:
        return (f"<p>no take left out: trained on all {_e(doc.get('n_candidates', '?'))} "
                f"takes ({link})</p>")
    crit = doc.get("criteria") or {}
    rows = "".join(
        f"<tr><td><code>{_e(t.get('sample_id'))}</code></td><td>{_e(t.get('rule'))}</td>"
        f"<td>{_e(_fmt(t.get('observed')))}</td><td>{_e(t.get('expected'))}</td>"
        f"<td>{_e(t.get('path', ''))}</td></tr>" for t in takes)
    return (f"<p><b>{len(takes)} of {_e(doc.get('n_candidates', '?'))} take(s) left out</b> "
            f"(<code>--skip-bad</code>; not trained or scored on; thresholds from "
            f"<code>{_e(crit.get('source', 'n/a'))}</code>; {link})</p>"
            "<table><tr><th>take</th><th>rule</th><th>observed</th><th>expected</th>"
            f"<th>file</th></tr>{rows}</table>")


def _evidence_html(run: Path, verdict_path: Path | None, base: str) -> str:
    items = []
    for rel in EVIDENCE_FILES:
        if (run / rel).is_file():
            items.append(f'<li><a href="{_e(base + rel)}">{_e(rel)}</a></li>')
    if verdict_path is not None and not str(verdict_path).startswith(str(run)):
        rel = os.path.relpath(verdict_path, run)
        items.append(f'<li><a href="{_e(base + rel)}">{_e(rel)}</a> (verdict)</li>')
    for folder in _EVIDENCE_DIRS:
        files = sorted(p for p in (run / folder).glob("*") if p.is_file()) \
            if (run / folder).is_dir() else []
        if files:
            links = ", ".join(f'<a href="{_e(f"{base}{folder}/{p.name}")}">{_e(p.name)}</a>'
                              for p in files)
            items.append(f"<li>{_e(folder)}/: {links}</li>")
    return f"<ul>{''.join(items)}</ul>"


def render_report(run: str | Path, *, verdict: str | Path | None = None,
                  plots: dict[str, Path] | None = None, base: str = "") -> str:
    """The HTML text of the report (plots read from ``plots`` and embedded).

    Args:
        run: a finished run folder.
        verdict: a verdict.json to show. (Default: ``RUN/guardrails/verdict.json`` if
            present, else the page says "not gated yet")
        plots: stem -> PNG path, as :func:`write_plots` returns; linked as
            ``plots/<stem>.png`` beside the report. (Default: no plots)
        base: prefix of every relative link, the run folder as seen from the report's
            folder (``""`` when the report sits in the run folder).
    """
    run_dir = require_run(run)
    results = read_json(run_dir / COMPLETE_RESULTS_FILE)
    if not isinstance(results, dict):
        from profy.errors import MalformedFileError

        raise MalformedFileError(run_dir / COMPLETE_RESULTS_FILE, "not a JSON object")
    verdict_obj, verdict_path = read_verdict(run_dir, verdict)
    meta = results.get("run", {}) if isinstance(results.get("run"), dict) else {}
    title = f"Profy run {meta.get('run_id', run_dir.name)}"
    figures = "".join(
        f'<figure><img alt="{_e(stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(Path(path).read_bytes()).decode("ascii")}">'
        f"<figcaption>{_e(PLOT_NAMES.get(stem, stem))} (<a href=\"plots/{_e(stem)}.png\">"
        f"plots/{_e(stem)}.png</a>)</figcaption></figure>"
        for stem, path in (plots or {}).items())
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}'
        f"</title><style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"
        f'<div class="meta">profile <b>{_e(meta.get("profile", "?"))}</b> &middot; config hash '
        f'<code>{_e(str(meta.get("config_hash", "?"))[:16])}</code> &middot; '
        f'{_e(meta.get("date", ""))} &middot; git <code>{_e(str(meta.get("git_hash", "?"))[:12])}'
        f'</code>{" (dirty)" if meta.get("git_dirty") else ""} &middot; device '
        f'{_e(meta.get("device", "?"))} &middot; folder <code>{_e(run_dir)}</code></div>'
        f"<h2>Gate verdict</h2>{_verdict_html(verdict_obj, verdict_path, run_dir, base)}"
        f"<h2>Results (held-out, mean ± std over folds)</h2>{_results_html(results)}"
        f"<h2>Quarantined takes</h2>{_quarantine_html(run_dir, base)}"
        f"<h2>Plots</h2><div class=\"plots\">{figures or '<p>no plots</p>'}</div>"
        f"<h2>Evidence</h2>{_evidence_html(run_dir, verdict_path, base)}</body></html>\n")


def write_report(run: str | Path, *, verdict: str | Path | None = None,
                 out: str | Path | None = None) -> Path:
    """Draw the plots into ``plots/`` beside the report and write the report atomically.

    With the default ``out`` (``RUN/report.html``) the plots go to ``RUN/plots/``; a
    report written elsewhere takes its plots with it, so a read-only run folder is
    never written to.

    Returns:
        Path of the report.
    """
    run_dir = require_run(run)
    target = Path(out) if out is not None else run_dir / "report.html"
    plots = write_plots(run_dir, target.parent / "plots")
    base = os.path.relpath(run_dir, target.resolve().parent).replace(os.sep, "/")
    base = "" if base == "." else base + "/"
    return atomic_write_text(target, render_report(run_dir, verdict=verdict, plots=plots,
                                                   base=base))
