"""PNG plots, the self-contained report.html (and a real headless browser), `profy report`."""

import base64
import html.parser
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profy.cli import main
from profy.visualization import PLOT_NAMES, write_plots
from profy.visualization.report import write_report


def _decode_png(data: bytes) -> np.ndarray:
    from matplotlib import image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return image.imread(io.BytesIO(data), format="png")


class _Refs(html.parser.HTMLParser):
    """Every src/href of the page, and the text."""

    def __init__(self):
        super().__init__()
        self.refs, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.refs += [(tag, k, v) for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_write_plots_writes_every_png_atomically(tiny_run):
    written = write_plots(tiny_run)
    assert list(written) == list(PLOT_NAMES)
    for stem, path in written.items():
        assert path == tiny_run / "plots" / f"{stem}.png"
        pixels = _decode_png(path.read_bytes())
        assert pixels.shape[0] > 150 and pixels.shape[1] > 250
        assert pixels[..., :3].std() > 0.05, f"{stem}.png is blank"
    assert not [p for p in (tiny_run / "plots").iterdir() if p.suffix != ".png"]  # no temp left


def test_a_run_without_multimodal_artifacts_gets_the_other_plots(tiny_run):
    (tiny_run / "modality_weights.parquet").unlink()
    written = write_plots(tiny_run)
    assert set(written) == {"confusion", "fold_variance", "reliability"}


def test_report_is_self_contained_with_embedded_plots(tiny_run):
    path = write_report(tiny_run)
    assert path == tiny_run / "report.html"
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text), "the report must not reference the network"
    assert "<link" not in text and "<script" not in text
    page = _parse(path)
    images = [v for tag, k, v in page.refs if tag == "img"]
    assert len(images) == len(PLOT_NAMES)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        _decode_png(base64.b64decode(src.split(",", 1)[1]))
    links = [v for tag, k, v in page.refs if tag == "a"]
    assert "complete_results.json" in links and "training.log" in links
    for link in links:  # relative, and each points at a real file of the run
        assert not Path(link).is_absolute()
        assert (tiny_run / link).is_file(), link
    body = " ".join(page.text)
    assert "not gated yet" in body
    for mode in ("sensor", "audio", "multimodal"):
        assert mode in body


def _verdict(run: Path, *, failing: str | None) -> None:
    from guardrails import CheckResult
    from guardrails.report import emit

    results = [CheckResult(name="gate.multimodal_f1", category="gate",
                           passed=failing != "gate.multimodal_f1", observed=0.58,
                           expected=">= 0.78", message="multimodal macro F1 mean"),
               CheckResult(name="audit.splits", category="audit", passed=True,
                           message="no take on both sides")]
    emit(results, title="test", report_dir=run / "guardrails", console=False, run_dir=run)


def test_report_shows_the_verdict_table(tiny_run):
    _verdict(tiny_run, failing="gate.multimodal_f1")
    path = write_report(tiny_run)
    body = " ".join(_parse(path).text)
    assert "verdict: FAIL" in body and "not gated yet" not in body
    assert "gate.multimodal_f1" in body and "audit.splits" in body
    assert ">= 0.78" in body
    links = [v for tag, k, v in _parse(path).refs if tag == "a"]
    assert "guardrails/verdict.json" in links


def test_report_elsewhere_keeps_links_and_leaves_the_run_untouched(tiny_run, tmp_path):
    before = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*"))
    out = tmp_path / "site" / "r.html"
    write_report(tiny_run, out=out)
    assert sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*")) == before
    assert sorted(p.name for p in (out.parent / "plots").iterdir()) == sorted(
        f"{stem}.png" for stem in PLOT_NAMES)
    links = [v for tag, k, v in _parse(out).refs if tag == "a"]
    assert "plots/confusion.png" in links
    assert links and all((out.parent / link).resolve().is_file() for link in links)


def test_cli_report_prints_where_it_wrote(tiny_run, capsys):
    assert main(["report", str(tiny_run)]) == 0
    assert str((tiny_run / "report.html").resolve()) in capsys.readouterr().out
    assert main(["report", str(tiny_run / "nope")]) == 2
    assert "nope: run folder not found" in capsys.readouterr().err
    assert main(["report", str(tiny_run), "--verdict", str(tiny_run / "v.json")]) == 2
    assert "v.json: verdict file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (CI: apt-get install -y chromium)")
    _verdict(tiny_run, failing=None)
    path = write_report(tiny_run)
    shot = tmp_path / "shot.png"
    # No network in the sandbox: a page that needed one would render with holes.
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", f"--screenshot={shot}",
                           "--window-size=1280,2400", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = _decode_png(shot.read_bytes())[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels.std() > 0.05, "the screenshot is blank"
    # The embedded figures put real colour on the page (the plots' blues), not just text.
    blue = (pixels[..., 2] > pixels[..., 0] + 0.2).mean()
    assert blue > 0.005


def test_report_and_release_notes_never_import_torch(tiny_run_ro, tiny_legacy_run_ro, tmp_path):
    import subprocess
    import sys

    code = ("import sys\n"
            "from profy.visualization.report import write_report\n"
            "from profy.visualization.release_notes import release_notes\n"
            f"write_report({str(tiny_run_ro)!r}, out={str(tmp_path / 'r.html')!r})\n"
            f"release_notes({str(tiny_run_ro)!r}, {str(tiny_legacy_run_ro)!r})\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(max_size=40))
def test_verdict_text_is_escaped_never_markup(name, message):
    from profy.visualization.report import _verdict_html

    verdict = {"verdict": "fail", "checks": [{"name": name, "category": "gate", "status": "fail",
                                              "message": message, "observed": message}]}
    page = _Refs()
    page.feed(_verdict_html(verdict, Path("/r/guardrails/verdict.json"), Path("/r"), ""))
    tags = set()

    class _Tags(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)

    _Tags().feed(_verdict_html(verdict, None, Path("/r"), ""))
    assert tags <= {"div", "a", "table", "tr", "th", "td", "code"}
    text = "".join(page.text)
    assert name.replace("\r", "\n") in text.replace("\r", "\n") or "\r" in name


def test_report_lists_the_quarantined_takes(tiny_run):
    import json

    path = tiny_run / "quarantine.json"
    doc = json.loads(path.read_text())
    assert doc["count"] == 0  # every run records its quarantine, empty included
    html = write_report(tiny_run).read_text()
    assert "no take left out" in html
    doc["takes"] = [{"sample_id": "0123456789abcdef01234567", "rule": "nonzero_frames.min",
                     "observed": 115.0, "expected": ">= 120", "path": "", "problem": "x"}]
    doc["count"], doc["criteria"] = 1, {"source": "default.yaml", "data.audio_stats": {}}
    path.write_text(json.dumps(doc))
    html = write_report(tiny_run).read_text()
    assert "1 of" in html and "0123456789abcdef01234567" in html and "nonzero_frames.min" in html
