"""Terminal rendering of a cross-validation result (shared by ``profy train`` and the demo)."""

from __future__ import annotations

from typing import Any

__all__ = ["render_cv_result"]


def render_cv_result(result: Any, console: Any) -> None:
    """Print a :class:`~profy.training.CVResult` as a table, its time and its run folder."""
    from rich.table import Table

    from profy.contract.console import print_table

    table = Table(title="held-out macro F1 per mode (player-wise folds)")
    for col, justify in (("mode", "left"), ("macro F1 mean ± std", "right"),
                         ("per fold", "right"), ("seconds per fold", "right")):
        table.add_column(col, justify=justify)
    for row in result.table().itertuples():
        table.add_row(row.mode, f"{row.macro_f1_mean:.3f} ± {row.macro_f1_std:.3f}",
                      " / ".join(f"{v:.3f}" for v in row.per_fold),
                      " / ".join(f"{v:.1f}" for v in row.seconds_per_fold))
    print_table(console, table)
    _render_quarantine(result.run_dir, console)
    console.print(f"training: {result.seconds:.1f} s\nrun folder: {result.run_dir}")


def _render_quarantine(run_dir: Any, console: Any) -> None:
    """One line per take the run left out (``quarantine.json``), whole ids and values."""
    import json
    from pathlib import Path

    from profy.contract.quarantine import QUARANTINE_FILE

    path = Path(run_dir) / QUARANTINE_FILE
    if not path.is_file():
        return
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not doc.get("count"):
        return
    console.print(f"[yellow]{doc['count']} of {doc['n_candidates']} take(s) quarantined "
                  f"(not trained on), listed in {path}:[/]")
    for take in doc["takes"]:
        where = f" {take['path']}" if take.get("path") else ""
        console.print(f"  {take['sample_id']} {take['rule']}:{where} {take['problem']}",
                      markup=False)
