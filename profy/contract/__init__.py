"""The contract between ``profy`` (writes) and ``guardrails`` (reads): torch-free.

Both halves import these modules and nothing else redefines what they define:

- :mod:`~profy.contract.layout`: the run folder's file names, shard paths, the default
  tag registry, the data root's per-take paths.
- :mod:`~profy.contract.model_io`: modes, model input/output names, dims and dtypes
  (``inputs_for(mode)``), the feature-cache entry format.
- :mod:`~profy.contract.schemas`: the Parquet schemas and declared ranges.
- :mod:`~profy.contract.tags`: the semantic-tag registry (reader and writer).
- :mod:`~profy.contract.quarantine`: the per-take rules and ``quarantine.json``.
- :mod:`~profy.contract.atomic`, :mod:`~profy.contract.hashing`: atomic writes, content
  hashes. :mod:`~profy.contract.console`: tables never cut off a terminal.

``guardrails`` imports nothing of ``profy`` but this package and :mod:`profy.errors`
(``tests/test_contract.py`` enforces it). Nothing here imports torch. The package
imports no submodule eagerly, so ``profy.contract.layout`` costs no pyarrow.
"""

__all__ = ["atomic", "console", "hashing", "layout", "model_io", "quarantine", "schemas",
           "tags"]
