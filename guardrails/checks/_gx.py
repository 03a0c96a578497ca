"""Great Expectations runtime shared by the data-quality suites and the Parquet audits.

One ephemeral GX context per process (no project folder, analytics and progress bars
off). A suite is a list of :class:`Rule` (an id, a GX expectation, a readable line);
:func:`validate` runs it on a pandas or Spark DataFrame through GX's matching data
source, keeps GX's own validation result JSON in ``report_dir/gx/`` and returns one
:class:`RuleOutcome` per rule. The same rules run on both engines: only the frame
differs (``--engine spark`` reads the Parquet file with Spark in local mode).

GX and pyspark are imported lazily: ``guardrails checks`` and ``schemas`` stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardrails._result import jsonable
from guardrails.errors import ArtifactError, GuardrailsError

__all__ = ["Rule", "RuleOutcome", "enable_data_docs", "gx_expectations", "read_frame",
           "spark_session", "stop_spark", "to_engine", "validate"]

_STATE: dict[str, Any] = {}
_LOG4J2 = """rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


@dataclass(frozen=True)
class Rule:
    """One rule of a suite: ``make(gxe)`` builds its GX expectation (``gxe`` is
    ``great_expectations.expectations``), so rules can be declared before GX loads."""

    id: str
    make: Callable[[Any], Any]
    description: str


@dataclass(frozen=True)
class RuleOutcome:
    """What GX found for one rule (``error`` set when the expectation could not run)."""

    id: str
    success: bool
    description: str
    unexpected_count: int | None = None
    element_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe evidence for a check's ``details``."""
        return jsonable({"rule": self.id, "success": self.success,
                         "description": self.description,
                         "unexpected_count": self.unexpected_count,
                         "element_count": self.element_count, "examples": self.examples[:10],
                         "error": self.error})


def enable_data_docs(on: bool = True) -> None:
    """Also render each suite's result as a GX Data Docs page (``--data-docs``)."""
    _STATE["data_docs"] = on


def gx_expectations():
    """``great_expectations.expectations``, imported once with analytics off."""
    if "gxe" not in _STATE:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no network calls from a gate
        try:
            import great_expectations.expectations as gxe
        except ImportError as exc:
            raise GuardrailsError("the data-quality suites need Great Expectations: "
                                  "pip install 'profy[guardrails]'") from exc
        _STATE["gxe"] = gxe
    return _STATE["gxe"]


def _context():
    if "context" not in _STATE:
        gx_expectations()
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        # In-memory stores and no Data Docs site: GX writes nothing anywhere; the
        # validation results we keep are written by validate() into the report folder.
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False))
        context = gx.get_context(mode="ephemeral", project_config=config)
        _STATE["context"] = context
        _STATE["batch_defs"] = {}
    return _STATE["context"]


def _batch_definition(engine: str):
    defs = _STATE.setdefault("batch_defs", {})
    if engine not in defs:
        context = _context()
        source = (context.data_sources.add_spark("guardrails_spark") if engine == "spark"
                  else context.data_sources.add_pandas("guardrails_pandas"))
        defs[engine] = source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
            "whole")
    return defs[engine]


def spark_session(scratch_dir: str | Path | None = None):
    """A local-mode SparkSession (one per process), quiet and writing only to ``scratch_dir``.

    ``PYSPARK_PYTHON`` is pinned to this interpreter so Python workers use the venv.
    """
    if "spark" not in _STATE:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise GuardrailsError("--engine spark needs pyspark: pip install 'profy[spark]' "
                                  "(and a Java 17 runtime)") from exc
        import tempfile

        # Spark's scratch space lives in the report folder (or a temp folder without one)
        scratch = Path(scratch_dir or tempfile.mkdtemp(prefix="guardrails-spark-")).resolve()
        # Spark's default log4j profile prints WARN lines on every start; errors only
        log4j = scratch / "log4j2.properties"
        log4j.parent.mkdir(parents=True, exist_ok=True)
        log4j.write_text(_LOG4J2)
        builder = (SparkSession.builder.master(os.environ.get("GUARDRAILS_SPARK_MASTER",
                                                              "local[*]"))
                   .appName("guardrails")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", "8")  # local mode: few cores
                   .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
                   .config("spark.local.dir", str(scratch / "tmp"))
                   .config("spark.driver.extraJavaOptions",
                           f"-Dlog4j2.configurationFile={log4j.as_uri()}")
                   .config("spark.driver.memory",
                           os.environ.get("GUARDRAILS_SPARK_DRIVER_MEMORY", "4g")))
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # pyspark raises its own types when the JVM cannot start
            raise GuardrailsError(f"could not start Spark in local mode (a Java 17 runtime "
                                  f"is needed): {str(exc).splitlines()[0] if str(exc) else exc!r}"
                                  ) from None
        session.sparkContext.setLogLevel("ERROR")
        _STATE["spark"] = session
    return _STATE["spark"]


def stop_spark() -> None:
    """Stop this process's SparkSession (and forget GX's Spark source bound to it)."""
    session = _STATE.pop("spark", None)
    _STATE.get("batch_defs", {}).pop("spark", None)
    if "context" in _STATE:
        try:
            _STATE["context"].data_sources.delete("guardrails_spark")
        except Exception:  # noqa: S110 - never registered: nothing to forget
            pass
    if session is not None:
        session.stop()


def read_frame(path: str | Path, engine: str, *, scratch_dir: str | Path | None = None,
               columns: Sequence[str] = ()):
    """A Parquet file as a pandas or Spark DataFrame; unreadable files raise ArtifactError.

    The Parquet footer is read first with pyarrow so that an empty, truncated or
    non-Parquet file is reported by name on both engines. ``columns`` a suite cannot do
    without must be present (else ArtifactError naming the file, not a KeyError later).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from guardrails._context import read_parquet

    path = Path(path)
    if engine == "pandas":
        frame = read_parquet(path).to_pandas()
        _require(path, frame.columns, columns)
        return frame
    if not path.is_file():
        raise ArtifactError(path, "missing")
    if path.stat().st_size == 0:
        raise ArtifactError(path, "empty file (0 bytes), not Parquet")
    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise ArtifactError(path, f"not a readable Parquet file ({exc})") from None
    frame = spark_session(scratch_dir).read.parquet(str(path.resolve()))
    _require(path, frame.columns, columns)
    return frame


def _require(path: Path, present: Sequence[str], needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in set(present)]
    if missing:
        raise ArtifactError(path, f"missing column(s) {missing} (schema v1)")


def to_engine(frame, engine: str, *, scratch_dir: str | Path | None = None):
    """A small pandas frame (derived evidence) on ``engine``."""
    if engine == "pandas":
        return frame
    return spark_session(scratch_dir).createDataFrame(frame)


def _widen(frame):
    """int8-32 -> int64 and float32 -> float64 (same values).

    GX 1.24 vectorizes ``expect_column_values_to_be_between`` on pandas only for int64 and
    float64 columns; an int32 column (``fold``, ``label`` ...) falls back to a Python call
    per value, ~6x slower on a 10M-row table. Arrow types are audited separately.
    """
    narrow = {c: ("int64" if t.kind in "iu" else "float64") for c, t in frame.dtypes.items()
              if t.kind in "iuf" and t.itemsize < 8}
    return frame.astype(narrow) if narrow else frame


def _outcome(rule: Rule, result: Any, index_column: str | None = None) -> RuleOutcome:
    info = result.exception_info or {}
    errors = [v.get("exception_message") for v in info.values()
              if isinstance(v, dict) and v.get("raised_exception")]
    if info.get("raised_exception"):
        errors.append(info.get("exception_message"))
    res = result.result or {}
    examples = list(res.get("partial_unexpected_list") or [])
    if index_column is not None and res.get("unexpected_index_list") is not None:
        # the failing rows' ids (every one), not their values
        examples = [r.get(index_column) if isinstance(r, dict) else r
                    for r in res["unexpected_index_list"]]
    return RuleOutcome(rule.id, bool(result.success) and not errors, rule.description,
                       res.get("unexpected_count"), res.get("element_count"), examples,
                       "; ".join(str(e) for e in errors if e) or None)


def validate(frame, rules: Sequence[Rule], *, suite: str, engine: str,
             report_dir: str | Path | None,
             index_column: str | None = None) -> list[RuleOutcome]:
    """Run ``rules`` as one GX suite on ``frame`` (pandas or Spark, per ``engine``).

    Args:
        frame: the table (a pandas DataFrame, or a Spark DataFrame for ``"spark"``).
        rules: the suite; rule ids must be unique.
        suite: suite name; GX's result JSON goes to ``report_dir/gx/<suite>.json``.
        engine: ``"pandas"`` or ``"spark"``.
        report_dir: where GX results are kept (``None``: not kept).
        index_column: a column naming each row (e.g. ``sample_id``): GX then lists every
            failing row by it (``COMPLETE`` result format), in its results, Data Docs and
            the outcomes' ``examples``. (Default: values, ``BASIC``)

    Returns:
        One outcome per rule, in ``rules`` order.
    """
    import great_expectations as gx

    from profy.contract.atomic import atomic_write_json

    gxe = gx_expectations()
    _context()  # a suite needs the (ephemeral) context to exist first
    by_id = {rule.id: rule for rule in rules}
    if len(by_id) != len(rules):
        raise ValueError(f"suite {suite!r}: duplicate rule ids")
    expectation_suite = gx.ExpectationSuite(name=suite)
    for rule in rules:
        expectation = rule.make(gxe)
        expectation.meta = {**(expectation.meta or {}), "rule": rule.id}
        expectation_suite.add_expectation(expectation)
    if engine == "pandas":
        frame = _widen(frame)
    if engine == "spark":
        # every expectation is its own Spark job: cache once instead of re-reading the
        # Parquet file (and re-running derived joins/windows) for each of them
        frame = frame.cache()
    try:
        batch = _batch_definition(engine).get_batch(batch_parameters={"dataframe": frame})
        result_format: Any = "BASIC" if index_column is None else {
            "result_format": "COMPLETE", "unexpected_index_column_names": [index_column],
            "partial_unexpected_count": 20}
        result = batch.validate(expectation_suite, result_format=result_format)
    finally:
        if engine == "spark":
            frame.unpersist()
    outcomes = {}
    for res in result.results:  # GX does not keep suite order: match by the rule id in meta
        rule_id = res.expectation_config.meta["rule"]
        outcomes[rule_id] = _outcome(by_id[rule_id], res, index_column)
    if report_dir is not None:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in suite)
        atomic_write_json(Path(report_dir) / "gx" / f"{safe}.json", jsonable(result.to_json_dict()))
        if _STATE.get("data_docs"):
            from guardrails.checks._gx_docs import write_page

            write_page(report_dir, safe, result)
    return [outcomes[rule.id] for rule in rules]
