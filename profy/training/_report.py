"""Terminal rendering of a cross-validation result (shared by ``profy train`` and the demo)."""

from __future__ import annotations

from typing import Any

__all__ = ["render_cv_result"]


def render_cv_result(result: Any, console: Any) -> None:
    """Print a :class:`~profy.training.CVResult` as a table, its time and its run folder."""
    from rich.table import Table

    from profy._console import print_table

    table = Table(title="held-out macro F1 per mode (player-wise folds)")
    for col, justify in (("mode", "left"), ("macro F1 mean ± std", "right"),
                         ("per fold", "right"), ("seconds per fold", "right")):
        table.add_column(col, justify=justify)
    for row in result.table().itertuples():
        table.add_row(row.mode, f"{row.macro_f1_mean:.3f} ± {row.macro_f1_std:.3f}",
                      " / ".join(f"{v:.3f}" for v in row.per_fold),
                      " / ".join(f"{v:.1f}" for v in row.seconds_per_fold))
    print_table(console, table)
    console.print(f"training: {result.seconds:.1f} s\nrun folder: {result.run_dir}")
