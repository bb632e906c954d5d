"""Apache Spark past one machine (docs/spark.md): assignment of every row of a Spark DataFrame
through ``mapInArrow``, and the per-arm sums ``analyze`` reads, computed by Spark aggregations.

``assign`` ships the configuration to the executors as JSON (:meth:`Snapshot.to_json`), never a
compiled object: each Python worker compiles it once (a cache keyed by the text's SHA-256) and
runs every Arrow batch through :meth:`Splitter.assign_columns`, the path of
:meth:`Splitter.assign_frame`. The executors need trafficsplit installed (the wheel, or a packed
virtual environment); ``--py-files`` cannot carry the compiled extension.

``import trafficsplit.spark`` needs neither pyspark nor pyarrow; the calls import them.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _time
from ._optional import require
from .analysis.metrics import (
    column_groups,
    column_names,
    column_pairs,
    covariate_columns,
    guardrail_specs,
)
from .config import Snapshot, as_snapshot, snapshot_from_json
from .errors import ArgumentError, ConfigError, UnitTypeError
from .splitter import Splitter

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["assign", "output_columns", "sufficient_statistics"]

# Spark types a unit id column may have (the hash contract: text, integers, bytes) and the
# types a time column may have (as Splitter.assign_frame reads them: times, or epoch seconds).
_UNIT_TYPES = ("StringType", "VarcharType", "CharType", "BinaryType", "ByteType", "ShortType",
               "IntegerType", "LongType")  # fmt: skip
_TIME_TYPES = ("TimestampType", "TimestampNTZType", "DateType", "ByteType", "ShortType",
               "IntegerType", "LongType", "FloatType", "DoubleType")  # fmt: skip


def output_columns(key: str) -> tuple[str, str, str]:
    """The columns :func:`assign` adds for experiment ``key``: the arm (``<key>``, as in
    :meth:`Splitter.assign_frame`), the unit's arm bucket (``<key>_bucket``) and the reason
    (``<key>_reason``).

    >>> output_columns("ranker-v2")
    ('ranker-v2', 'ranker-v2_bucket', 'ranker-v2_reason')
    """
    return key, f"{key}_bucket", f"{key}_reason"


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything a Python worker needs, in plain data: pickled with the function, it carries
    the configuration as JSON and never a compiled handle."""

    digest: str
    config_json: str
    unit_column: str
    experiments: tuple[str, ...]
    at_column: str | None
    at_us: int | None
    # Per output column: ("input", position in the batch) or (arm|bucket|reason, experiment).
    layout: tuple[tuple[str, Any], ...]
    names: tuple[str, ...]


def assign(
    df: DataFrame,
    config: Any,
    unit_column: str,
    experiments: Iterable[str] | str | None = None,
    at_column: str | None = None,
    *,
    at: Any = None,
) -> DataFrame:
    """``df`` with three columns per experiment: ``<key>`` (the arm, a string; null without
    one), ``<key>_bucket`` (the unit's arm bucket, an int; null when the unit id is) and
    ``<key>_reason`` (why: ``assigned``, ``not_exposed``, ``holdout``, ``missing_unit``, ...).
    Every row gets what ``Splitter(config).assign_frame`` gives it on one machine.

    - ``config``: a :class:`~trafficsplit.config.Snapshot`, a :class:`~trafficsplit.Splitter`,
      a configuration file or folder, or a mapping; it reaches the executors as JSON.
    - ``unit_column``: the unit ids (string, integer or binary column); NULL gives reason
      ``missing_unit``. Targeting reads the row's other columns as attributes.
    - ``experiments``: the keys to assign (default: every experiment of the configuration).
    - ``at_column``: each row's time (timestamp, date, or epoch seconds), to replay the
      allocation history; otherwise every row is assigned at ``at`` (a datetime, ISO text or
      epoch seconds), by default the moment ``assign`` is called on the driver, so that every
      executor and every evaluation of the result agree.

    Lazy like any transformation: nothing runs until an action. Arguments are checked here, on
    the driver: an unknown column or experiment raises :class:`~trafficsplit.ArgumentError`
    naming those that exist, a unit column of a type the hash contract refuses
    :class:`~trafficsplit.UnitTypeError`. Existing columns of the output names are replaced in
    place, as ``assign_frame`` does.

    >>> out = assign(spark_df, "experiments.yaml", "user_id")  # doctest: +SKIP
    """
    what = "trafficsplit.spark.assign"
    require("pyspark", what=what)
    types = require("pyspark.sql.types", what=what)
    _check_frame(df, what)
    snapshot = as_snapshot(config, f"{what}: config")
    keys = _experiment_keys(snapshot, experiments, what)
    fields = {f.name: f for f in df.schema.fields}
    unit_field = _field(fields, unit_column, "unit_column", what)
    if type(unit_field.dataType).__name__ not in _UNIT_TYPES:
        raise UnitTypeError(
            f"{what}: unit_column {unit_column!r} has Spark type "
            f"{unit_field.dataType.simpleString()}; unit ids are strings, integers or binary "
            "(docs/assignment-spec.md)"
        )
    at_us: int | None = None
    if at_column is not None:
        if at is not None:
            raise ArgumentError(f"{what}: give at or at_column, not both")
        time_field = _field(fields, at_column, "at_column", what)
        if type(time_field.dataType).__name__ not in _TIME_TYPES:
            raise ArgumentError(
                f"{what}: at_column {at_column!r} has Spark type "
                f"{time_field.dataType.simpleString()}; expected a timestamp, a date or epoch "
                "seconds"
            )
    else:
        moment = _dt.datetime.now(_dt.UTC) if at is None else at
        at_us = _time.to_micros(moment, f"{what}: at")

    names = list(df.schema.names)
    out_fields = list(df.schema.fields)
    layout: list[tuple[str, Any]] = [("input", i) for i in range(len(names))]
    for key in keys:
        added = zip(
            ("arm", "bucket", "reason"),
            output_columns(key),
            (types.StringType(), types.IntegerType(), types.StringType()),
            strict=True,
        )
        for kind, name, spark_type in added:
            field = types.StructField(name, spark_type, nullable=kind != "reason")
            if name in names:  # replaced where it stands, as assign_frame does
                i = names.index(name)
                out_fields[i], layout[i] = field, (kind, key)
            else:
                names.append(name)
                out_fields.append(field)
                layout.append((kind, key))
    text = snapshot.to_json()
    plan = _Plan(
        digest=hashlib.sha256(text.encode()).hexdigest(),
        config_json=text,
        unit_column=unit_column,
        experiments=tuple(keys),
        at_column=at_column,
        at_us=at_us,
        layout=tuple(layout),
        names=tuple(names),
    )
    return df.mapInArrow(_BatchAssigner(plan), types.StructType(out_fields))


def _check_frame(df: Any, what: str) -> None:
    sql = require("pyspark.sql", what=what)
    if not isinstance(df, sql.DataFrame):
        raise ArgumentError(f"{what}: df must be a Spark DataFrame, got {type(df).__name__}")


def _field(fields: Mapping[str, Any], name: Any, argument: str, what: str) -> Any:
    if not isinstance(name, str) or name not in fields:
        raise ArgumentError(
            f"{what}: {argument} {name!r} is not a column of the DataFrame; columns: "
            f"{', '.join(fields) or '(none)'}"
        )
    return fields[name]


def _experiment_keys(
    snapshot: Snapshot, experiments: Iterable[str] | str | None, what: str
) -> list[str]:
    if experiments is None:
        return list(snapshot.experiments)
    keys = [experiments] if isinstance(experiments, str) else list(experiments)
    unknown = [k for k in keys if k not in snapshot.experiments]
    if unknown:
        known = ", ".join(snapshot.experiments) or "(none)"
        raise ArgumentError(
            f"{what}: unknown experiment(s) {', '.join(map(repr, unknown))}; the configuration "
            f"has: {known}"
        )
    if len(set(keys)) != len(keys):
        raise ArgumentError(f"{what}: experiments lists a key twice: {keys}")
    return keys


class _BatchAssigner:
    """The function ``mapInArrow`` runs on the executors. Pickled by reference to this module,
    so a worker runs the trafficsplit installed beside it."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _assign_batches(self.plan, batches)


# Compiled configurations of this Python worker, by the SHA-256 of their JSON; a few are kept,
# so that a long-lived worker serving jobs with changing configurations stays bounded.
_COMPILED: OrderedDict[str, Splitter] = OrderedDict()
_COMPILED_MAX = 8
_COMPILED_LOCK = threading.Lock()
# Per configuration digest: how often this process compiled it and how many batches it
# assigned with it (what the tests read to see one compilation serve many batches).
_compilations: Counter[str] = Counter()
_batches: Counter[str] = Counter()


def _splitter(digest: str, text: str) -> Splitter:
    with _COMPILED_LOCK:
        splitter = _COMPILED.get(digest)
        if splitter is not None:
            _COMPILED.move_to_end(digest)
            return splitter
        splitter = Splitter(snapshot_from_json(text))
        _compilations[digest] += 1
        _COMPILED[digest] = splitter
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
        return splitter


def _assign_batches(plan: _Plan, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    what = "trafficsplit.spark.assign"
    pa = require("pyarrow", what=what)
    splitter = _splitter(plan.digest, plan.config_json)
    at = None if plan.at_us is None else _time.from_micros(plan.at_us)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        results = splitter.assign_columns(
            table, plan.unit_column, plan.experiments, at_column=plan.at_column, at=at
        )
        columns = []
        for kind, which in plan.layout:
            if kind == "input":
                columns.append(batch.column(which))
                continue
            b = results[which]
            arm, bucket, reason = b.arrow_columns()
            if kind == "arm":
                columns.append(arm.dictionary_decode())
            elif kind == "bucket":
                columns.append(bucket)
            else:
                columns.append(reason.dictionary_decode())
        _batches[plan.digest] += 1
        yield pa.RecordBatch.from_arrays(columns, names=list(plan.names))


def sufficient_statistics(
    df: DataFrame,
    arm: str = "arm",
    metrics: Sequence[str] | str = (),
    covariates: Mapping[str, str] | Sequence[str] | None = None,
    ratio_metrics: Mapping[str, tuple[str, str]] | None = None,
    guardrails: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The per-arm table of :func:`trafficsplit.sufficient_statistics` (``n``, ``sum__c``,
    ``sumsq__c``, ``sumprod__a__b``), computed by one Spark aggregation over ``df`` (one row
    per unit) and returned as a small pandas DataFrame that :func:`trafficsplit.analyze`
    reads, one row per arm sorted by arm. Rows without an arm are left out.

    Per arm, Spark computes the count, the means and the centred second moments
    (``var_pop``, ``covar_pop``: merged across partitions without cancellation); the raw sums
    are formed from them as the pandas path forms them, so both give the same analysis.

    Unknown columns raise :class:`~trafficsplit.ArgumentError`; a column that is not numeric
    or boolean, or that holds NULL, NaN or infinite values, raises
    :class:`~trafficsplit.ConfigError` (fill or drop them first).

    >>> table = sufficient_statistics(spark_df, "arm", ["converted"])  # doctest: +SKIP
    """
    what = "trafficsplit.spark.sufficient_statistics"
    require("pyspark", what=what)
    functions = require("pyspark.sql.functions", what=what)
    pandas = require("pandas", what=what)
    _check_frame(df, what)
    metric_list = column_names(metrics, "metrics")
    cov = covariate_columns(covariates, metric_list)
    ratios = column_pairs(ratio_metrics, "ratio_metrics")
    guards = guardrail_specs(guardrails)
    groups = column_groups(metric_list, cov, ratios, guards)
    if not groups:
        raise ArgumentError(f"{what}: name at least one metric, ratio metric or guardrail")
    cols: list[str] = []
    for g in groups.values():
        cols.extend(c for c in g if c not in cols)
    fields = {f.name: f for f in df.schema.fields}
    _field(fields, arm, "arm", what)
    for c in cols:
        kind = type(_field(fields, c, "metric column", what).dataType).__name__
        if kind not in ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType",
                        "DoubleType", "DecimalType", "BooleanType"):  # fmt: skip
            raise ConfigError(
                f"{what}: column {c!r} must be numeric (or boolean), got Spark type "
                f"{fields[c].dataType.simpleString()}"
            )
    pairs = [
        _ordered(cols.index(g[i]), cols.index(g[j]))
        for g in groups.values()
        for i in range(len(g))
        for j in range(i + 1, len(g))
    ]
    pairs = list(dict.fromkeys(pairs))
    F = functions
    x = [_column(F, c).cast("double") for c in cols]
    aggregates = [F.count(F.lit(1)).alias("n")]
    for i, v in enumerate(x):
        aggregates += [
            F.sum(F.when(v.isNull() | F.isnan(v), 1).otherwise(0)).alias(f"missing{i}"),
            F.sum(F.when(F.abs(v) == math.inf, 1).otherwise(0)).alias(f"infinite{i}"),
            F.avg(v).alias(f"mean{i}"),
            F.var_pop(v).alias(f"m2_{i}"),
        ]
    aggregates += [F.covar_pop(x[i], x[j]).alias(f"co{i}_{j}") for i, j in pairs]
    # One pass; the group of rows without an arm is checked for missing values like the others
    # (as the pandas path checks every row) and then left out.
    rows = df.groupBy(_column(F, arm).alias("arm")).agg(*aggregates).collect()
    for i, c in enumerate(cols):
        missing = sum(r[f"missing{i}"] for r in rows)
        if missing:
            raise ConfigError(
                f"{what}: column {c!r} has {missing} missing values (NULL or NaN); fill or drop "
                "them first (sums of incomplete rows would not be consistent)"
            )
        infinite = sum(r[f"infinite{i}"] for r in rows)
        if infinite:
            raise ConfigError(
                f"{what}: column {c!r} has {infinite} infinite value(s); use NULL for a missing "
                "value and drop those rows"
            )
    rows = sorted((r for r in rows if r["arm"] is not None), key=lambda r: str(r["arm"]))
    n = [int(r["n"]) for r in rows]
    means = [[float(r[f"mean{i}"]) for i in range(len(cols))] for r in rows]
    table: dict[str, Any] = {arm: [str(r["arm"]) for r in rows], "n": n}
    # Raw sums from the centred moments, as the pandas path forms them: Σx = n·mean and
    # Σxy = n·covar_pop + n·mean_x·mean_y.
    for i, c in enumerate(cols):
        table[f"sum__{c}"] = [k * m[i] for k, m in zip(n, means, strict=True)]
        table[f"sumsq__{c}"] = [
            k * float(r[f"m2_{i}"]) + k * m[i] * m[i]
            for k, m, r in zip(n, means, rows, strict=True)
        ]
    for g in groups.values():
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                a, b = cols.index(g[i]), cols.index(g[j])
                co = "co{}_{}".format(*_ordered(a, b))
                table[f"sumprod__{g[i]}__{g[j]}"] = [
                    k * float(r[co]) + k * m[a] * m[b]
                    for k, m, r in zip(n, means, rows, strict=True)
                ]
    return pandas.DataFrame(table)


def _ordered(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


def _column(functions: Any, name: str) -> Any:
    """The column ``name`` taken literally (dots and spaces are part of the name)."""
    return functions.col("`" + name.replace("`", "``") + "`")
