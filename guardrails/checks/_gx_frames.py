"""Derived evidence columns, computed natively on each engine before a GX suite runs.

GX validates columns; some rules are about groups or other tables (a player in two
roles, a prediction without a held-out take). Those become one extra column computed
with pandas or Spark (group counts as window functions, membership as a join), which
the *same* GX expectation then checks on either engine. Names start with ``_`` so they
never collide with artifact columns.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["with_abs_sum_error", "with_group_count", "with_group_nunique", "with_membership"]


def with_abs_sum_error(frame, engine: str, columns: Sequence[str], total: float, out: str):
    """Add ``out = |sum(columns) - total|`` (e.g. fusion weights summing to 1)."""
    if engine == "pandas":
        frame = frame.copy()
        frame[out] = (frame[list(columns)].sum(axis=1) - total).abs()
        return frame
    import pyspark.sql.functions as F

    expr = sum((F.col(c) for c in columns[1:]), F.col(columns[0]))
    return frame.withColumn(out, F.abs(expr - F.lit(total)))


def with_group_nunique(frame, engine: str, by: Sequence[str], column: str, out: str):
    """Add ``out`` = number of distinct ``column`` values within each ``by`` group."""
    if engine == "pandas":
        frame = frame.copy()
        frame[out] = frame.groupby(list(by))[column].transform("nunique").astype("int64")
        return frame
    import pyspark.sql.functions as F
    from pyspark.sql import Window

    return frame.withColumn(out, F.size(F.collect_set(column).over(Window.partitionBy(*by))))


def with_group_count(frame, engine: str, by: Sequence[str], column: str, value: str, out: str):
    """Add ``out`` = number of rows in each ``by`` group whose ``column == value``."""
    if engine == "pandas":
        frame = frame.copy()
        frame[out] = ((frame[column] == value).groupby([frame[b] for b in by])
                      .transform("sum").astype("int64"))
        return frame
    import pyspark.sql.functions as F
    from pyspark.sql import Window

    hit = F.when(F.col(column) == F.lit(value), 1).otherwise(0)
    return frame.withColumn(out, F.sum(hit).over(Window.partitionBy(*by)).cast("long"))


def with_membership(frame, engine: str, keys: Sequence[str], other, other_keys: Sequence[str],
                    out: str):
    """Add boolean ``out``: the row's ``keys`` tuple occurs in ``other[other_keys]``.

    ``other`` is a frame on the same engine (a Spark left join on its distinct keys;
    a pandas MultiIndex membership test).
    """
    if engine == "pandas":
        import pandas as pd

        frame = frame.copy()
        left = pd.MultiIndex.from_frame(frame[list(keys)].astype(str))
        right = pd.MultiIndex.from_frame(other[list(other_keys)].astype(str))
        frame[out] = left.isin(right)
        return frame
    import pyspark.sql.functions as F

    right = other.select(*[F.col(o).cast("string").alias(f"__k{i}")
                           for i, o in enumerate(other_keys)]).distinct()
    right = right.withColumn(out, F.lit(True))
    left = frame
    for i, k in enumerate(keys):
        left = left.withColumn(f"__k{i}", F.col(k).cast("string"))
    joined = left.join(right, on=[f"__k{i}" for i in range(len(keys))], how="left")
    return joined.drop(*[f"__k{i}" for i in range(len(keys))]).fillna({out: False})
