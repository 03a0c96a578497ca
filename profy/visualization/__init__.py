"""Plots, the self-contained HTML report and release notes of a run folder.

Torch-free (numpy, pandas, pyarrow; matplotlib imported lazily when drawing), so a
guardrails container can render a report for any run folder.

- :mod:`profy.visualization.compute`: the numbers behind each plot.
- :mod:`profy.visualization.plots`: PNGs from those numbers, ``RUN/plots/``.
- :mod:`profy.visualization.report`: ``RUN/report.html``.
- :mod:`profy.visualization.release_notes`: Markdown diff of a run against a baseline.
"""

from profy.visualization.plots import PLOT_NAMES, write_plots

__all__ = ["PLOT_NAMES", "write_plots"]
