"""``RunContext``: one run folder (DESIGN.md section 3) as the checks read it.

Artifacts are read once and cached; every read failure becomes an
:class:`~guardrails.errors.ArtifactError` naming the file (missing, empty, truncated,
not Parquet, not JSON), so a check never crashes on bad evidence and never passes on
missing evidence. Paths may not escape the run folder.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from guardrails.errors import ArtifactError, BadInputError
from profy.contract.layout import CONFIG_FILE, CONFIG_HASH_FILE

__all__ = ["RunContext", "read_parquet"]


class RunContext:
    """A run folder plus where reports go and how large tables are audited.

    Everything a check reads comes from here: the run's artifacts (read once, cached),
    the settings below, and :attr:`memo` for figures several checks derive.

    Args:
        run_dir: ``runs/experiment_YYYYMMDD_HHMMSS``.
        report_dir: where checks may keep evidence (GX results, ...). (Default:
            ``run_dir/guardrails``)
        engine: ``"pandas"`` or ``"spark"`` for data suites and audits.
        baseline: the run to compare against, when one is given.
        seed: seed for every resampling a check does (bootstrap), so verdicts repeat.
        replay_by_tag: replays resolve their model through the tag registry (``guardrails
            replay``) instead of replaying this run's own exported models (``guardrails
            ci``: a verdict is evidence about the run it names). (Default: False)
        onnx_models: the ONNX checks cover only these model files (``guardrails onnx
            RUN/onnx/<model>.onnx``). (Default: None, every model in ``RUN/onnx/``)

    Attributes:
        memo: derived figures shared by checks of one run (e.g. the held-out predictions
            joined to the splits), keyed by the deriving module; empty at first. A forked
            check lane fills its own copy.

    Raises:
        BadInputError: ``run_dir`` is not a folder.
    """

    run_dir: Path
    report_dir: Path
    engine: str
    baseline: RunContext | None
    seed: int
    replay_by_tag: bool
    onnx_models: list[Path] | None
    memo: dict[str, Any]

    def __init__(self, run_dir: str | Path, *, report_dir: str | Path | None = None,
                 engine: str = "pandas", baseline: RunContext | None = None,
                 seed: int = 0, replay_by_tag: bool = False,
                 onnx_models: list[Path] | None = None) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise BadInputError(self.run_dir, "not a run folder (no such directory)")
        if engine not in ("pandas", "spark"):
            raise BadInputError(self.run_dir, f"engine must be 'pandas' or 'spark', not {engine!r}")
        self.report_dir = Path(report_dir or self.run_dir / "guardrails")
        self.engine = engine
        self.baseline = baseline
        self.seed = seed
        self.replay_by_tag = replay_by_tag
        self.onnx_models = None if onnx_models is None else [Path(m) for m in onnx_models]
        self.memo = {}
        self._tables: dict[str, pa.Table] = {}
        self._json: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RunContext({str(self.run_dir)!r}, engine={self.engine!r})"

    # -- paths -----------------------------------------------------------------------
    def path(self, rel: str | Path, *, must_exist: bool = True) -> Path:
        """``run_dir / rel``, refused if it escapes the run folder or (optionally) is missing."""
        root = self.run_dir.resolve()
        target = (self.run_dir / rel).resolve()
        if target != root and root not in target.parents:
            raise ArtifactError(self.run_dir / rel, "path escapes the run folder")
        if must_exist and not target.exists():
            raise ArtifactError(self.run_dir / rel, "missing from the run folder")
        return self.run_dir / rel

    def exists(self, rel: str | Path) -> bool:
        """Whether ``rel`` exists inside the run folder."""
        try:
            return self.path(rel, must_exist=False).exists()
        except ArtifactError:
            return False

    # -- artifacts -------------------------------------------------------------------
    def table(self, rel: str) -> pa.Table:
        """A Parquet artifact as an Arrow table (cached)."""
        if rel not in self._tables:
            self._tables[rel] = read_parquet(self.path(rel))
        return self._tables[rel]

    def frame(self, rel: str):  # -> pandas.DataFrame (pandas imported lazily)
        """A Parquet artifact as a pandas DataFrame (a fresh copy each call)."""
        return self.table(rel).to_pandas()

    def json(self, rel: str) -> Any:
        """A JSON artifact (cached)."""
        if rel not in self._json:
            path = self.path(rel)
            try:
                self._json[rel] = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ArtifactError(path, f"not valid JSON ({exc})") from None
        return self._json[rel]

    def text(self, rel: str) -> str:
        """A text artifact such as ``training.log``."""
        path = self.path(rel)
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ArtifactError(path, f"not UTF-8 text ({exc})") from None

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved run config (``config.yaml``)."""
        path = self.path(CONFIG_FILE)
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ArtifactError(path, f"not valid YAML ({exc})") from None
        if not isinstance(cfg, dict):
            raise ArtifactError(path, "expected a mapping")
        return cfg

    @cached_property
    def config_hash(self) -> str:
        """The run's config hash (``config_hash`` file)."""
        return self.text(CONFIG_HASH_FILE).strip()


def read_parquet(path: str | Path) -> pa.Table:
    """Read a Parquet file, turning every failure into an ArtifactError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(path, "missing")
    if path.stat().st_size == 0:
        raise ArtifactError(path, "empty file (0 bytes), not Parquet")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ArtifactError(path, f"not a readable Parquet file ({exc})") from None
