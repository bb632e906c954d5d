"""SQL functions on DuckDB (docs/duckdb.md): ``ts_arm``, ``ts_bucket`` and ``ts_reason`` give
each row of a query the arm, arm bucket and reason that :meth:`Splitter.assign_frame` gives it.

Vectorised Arrow UDFs do the work: DuckDB hands one a vector of rows (2,048 at a time) and it
runs them through :meth:`Splitter.assign_columns`, the path of ``assign_frame`` (holdouts,
layers, status and time window, targeting, overrides, history replay), returning arm, bucket
and reason as one STRUCT. DuckDB's Python UDFs have a single signature each (no overloads, no
ANY), so the SQL functions are temporary macros in front of them: they take 2, 3 or 4
arguments and call the UDF for the unit's type (text, integer or bytes; ``typeof`` is folded
when the query is planned, so each call keeps one branch), with ``at`` as microseconds and a
STRUCT of attributes as JSON. Each argument DuckDB hands over costs a copy of its column, so
each UDF takes only what its call needs. A query that asks for several of the functions calls
the UDF once: DuckDB computes the common STRUCT once and takes its fields.

``import trafficsplit.duckdb`` needs neither duckdb nor pyarrow; :func:`register` imports them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ._optional import loaded, require
from ._time import from_micros
from .batch import BatchAssignment
from .config import as_snapshot
from .errors import ArgumentError, ConfigError
from .splitter import Splitter

__all__ = ["register"]

_WHAT = "trafficsplit.duckdb.register"

# Column names of the frame handed to Splitter.assign_columns; attributes keep their own names.
_UNIT = "__trafficsplit_unit"
_AT = "__trafficsplit_at"

# DuckDB types (as typeof names them) of unit ids: the hash contract takes text, integers and
# bytes. Integers that fit go as BIGINT; wider ones as their decimal text, the same bytes.
_TEXT_TYPES = ("VARCHAR", "UBIGINT", "HUGEINT", "UHUGEINT", '"NULL"')
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
# Times without a zone are UTC, as everywhere in trafficsplit; TIMESTAMPTZ is an instant.
_NAIVE_TIME_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE")

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# The UDFs of a configuration: one per DuckDB type a unit travels as, with and without the
# attributes argument; each takes (experiment VARCHAR, unit, at BIGINT microseconds[, JSON]).
_UNIT_KINDS = {"text": "VARCHAR", "integer": "BIGINT", "bytes": "BLOB"}
_UDF_RESULT = "STRUCT(arm VARCHAR, bucket INTEGER, reason VARCHAR)"


def register(con: Any, config: Any, *, prefix: str = "ts_") -> Any:
    """Gives the DuckDB connection ``con`` the SQL functions ``<prefix>arm``,
    ``<prefix>bucket`` and ``<prefix>reason`` over the experiments of ``config``; returns
    ``con``.

    ``config``: a :class:`~trafficsplit.config.Snapshot`, a :class:`~trafficsplit.Splitter`, a
    configuration file or folder, or a mapping; compiled once, here. Each function takes
    ``(experiment, unit)``, ``(experiment, unit, at)`` or ``(experiment, unit, at,
    attributes)``: an experiment key, a VARCHAR, BLOB or integer unit id, a TIMESTAMP,
    TIMESTAMPTZ or DATE (naive times are UTC; without ``at``, the query's ``now()``), and a
    STRUCT or JSON object of the attributes that targeting reads. The rows are those of
    ``Splitter(config).assign_frame``: a NULL unit gets reason ``missing_unit``, arm NULL and
    bucket NULL; a row whose experiment is NULL gets NULL everywhere.

    The functions are temporary macros of this connection (register again on each cursor);
    registering again replaces them. ``prefix`` names them (letters, digits and ``_``)::

        import duckdb
        from trafficsplit.duckdb import register

        con = register(duckdb.connect(), "experiments.yaml")
        con.sql("SELECT user_id, ts_arm('ranker-v2', user_id) FROM 'users/*.parquet'")
    """
    duckdb = require("duckdb", what=_WHAT)
    require("pyarrow", extra="duckdb", what=_WHAT)
    require("pyarrow.json", extra="duckdb", what=_WHAT)
    connection = getattr(duckdb, "DuckDBPyConnection", None)
    if connection is None or not isinstance(con, connection):
        raise ArgumentError(
            f"{_WHAT}: con must be a DuckDB connection (duckdb.connect()), got {type(con).__name__}"
        )
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ArgumentError(
            f"{_WHAT}: prefix must be letters, digits and '_' (not starting with a digit), "
            f"got {prefix!r}"
        )
    splitter = Splitter(as_snapshot(config, _WHAT))
    # The UDFs are visible to every connection of the database, the macros only to this one:
    # named by the configuration's version, connections with different configurations coexist.
    version = re.sub(r"[^0-9A-Za-z_]", "_", splitter.version)
    udfs: dict[tuple[str, bool], str] = {}
    for kind in _UNIT_KINDS:
        udfs[kind, False] = f"__{prefix}assign_{kind}_{version}"
        udfs[kind, True] = f"__{prefix}assign_{kind}_attributes_{version}"
    existing = {
        row[0]
        for row in con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE list_contains(?, function_name)",
            [list(udfs.values())],
        ).fetchall()
    }
    plain, with_attributes = _sql_functions(splitter, prefix)
    for (kind, given), name in udfs.items():
        if name not in existing:
            con.create_function(
                name,
                with_attributes if given else plain,
                ["VARCHAR", _UNIT_KINDS[kind], "BIGINT"] + (["JSON"] if given else []),
                _UDF_RESULT,
                type="arrow",
                null_handling="special",
                side_effects=False,
            )
    for field in ("arm", "bucket", "reason"):
        con.execute(_macro(prefix + field, udfs, field)).fetchall()
    return con


def _macro(name: str, udfs: dict[tuple[str, bool], str], field: str) -> str:
    """The temporary macro ``name`` with its three arities, calling the UDF for the unit's
    type (``udfs``: by unit kind and whether attributes are passed)."""

    def listing(types: tuple[str, ...]) -> str:
        return ", ".join("'" + t.replace("'", "''") + "'" for t in types)

    at = (
        f"CASE WHEN typeof(\"at\") = 'TIMESTAMP WITH TIME ZONE' "
        f'THEN epoch_us(TRY_CAST("at" AS TIMESTAMPTZ)) '
        f'WHEN typeof("at") IN ({listing(_NAIVE_TIME_TYPES)}) '
        f'THEN epoch_us(TRY_CAST("at" AS TIMESTAMP)) '
        f"ELSE error('{name}: at must be a TIMESTAMP, TIMESTAMPTZ or DATE, not ' "
        f"|| typeof(\"at\") || ' (epoch seconds: to_timestamp(at))') END"
    )
    kinds = {
        "text": f"typeof(unit) IN ({listing(_TEXT_TYPES)}) OR starts_with(typeof(unit), 'ENUM(')",
        "integer": f"typeof(unit) IN ({listing(_INTEGER_TYPES)})",
        "bytes": "typeof(unit) = 'BLOB'",
    }
    refused = (
        f"error('{name}: the unit must be VARCHAR, BLOB or an integer, not ' || typeof(unit) "
        f"|| ' (floats and booleans are refused by the hash contract: cast whole numbers to "
        f"BIGINT)')"
    )
    overloads = []
    for parameters, when, attributes in (
        ("experiment, unit", "epoch_us(now())", None),
        ('experiment, unit, "at"', at, None),
        ('experiment, unit, "at", attributes', at, "CAST(attributes AS JSON)"),
    ):
        branches = []
        for kind, test in kinds.items():
            udf = udfs[kind, attributes is not None]
            args = f"experiment, TRY_CAST(unit AS {_UNIT_KINDS[kind]}), {when}"
            args += f", {attributes}" if attributes else ""
            branches.append(f"WHEN {test} THEN {udf}({args}).{field}")
        overloads.append(f"({parameters}) AS CASE {' '.join(branches)} ELSE {refused} END")
    return f"CREATE OR REPLACE TEMP MACRO {name}" + ", ".join(overloads)


def _sql_functions(splitter: Splitter, prefix: str) -> tuple[Callable[..., Any], ...]:
    """The Arrow UDFs, without and with attributes: one vector of rows in (each argument a
    pyarrow array of the same length), one STRUCT array of arm, bucket and reason out."""

    def assign(experiment: Any, unit: Any, at_us: Any) -> Any:
        return _assign_rows(splitter, prefix, experiment, unit, at_us, None)

    def assign_with_attributes(experiment: Any, unit: Any, at_us: Any, attributes: Any) -> Any:
        return _assign_rows(splitter, prefix, experiment, unit, at_us, attributes)

    return assign, assign_with_attributes


def _plain(values: Any) -> Any:
    """A pyarrow Array of a ChunkedArray or Array."""
    pa = loaded("pyarrow")
    if not isinstance(values, pa.ChunkedArray):
        return values
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


def _text(values: Any) -> Any:
    """A string or large_string Array of a text argument, whatever DuckDB's Arrow settings
    (``produce_arrow_string_view``, ``arrow_large_buffer_size``, JSON as an extension type)."""
    pa = loaded("pyarrow")
    if isinstance(values.type, pa.ExtensionType):
        values = values.storage
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    return values.cast(pa.large_string())


def _offsets(values: Any) -> np.ndarray:
    """The offsets of a string or large_string Array, as numpy, without copying."""
    pa = loaded("pyarrow")
    width = np.dtype(np.int64 if pa.types.is_large_string(values.type) else np.int32)
    return np.frombuffer(
        values.buffers()[1], width, len(values) + 1, values.offset * width.itemsize
    )


def _only_key(names: Any) -> str | None:
    """The experiment key when every row names the same one (the usual constant argument), else
    None. Compares the string buffers with numpy: hashing each row (``unique``) costs more."""
    rows = len(names)
    if rows == 0 or names.null_count:
        return None
    first = names[0].as_py()
    encoded = first.encode()
    offsets = _offsets(names)
    if not (np.diff(offsets) == len(encoded)).all():
        return None
    if not encoded:
        return first  # every row is ''
    data = names.buffers()[2]
    return first if data[offsets[0] : offsets[-1]].to_pybytes() == encoded * rows else None


def _assign_rows(
    splitter: Splitter, prefix: str, experiment: Any, unit: Any, at_us: Any, attributes: Any
) -> Any:
    pa = loaded("pyarrow")
    pc = require("pyarrow.compute", extra="duckdb", what=_WHAT)
    names = _text(_plain(experiment))
    unit = _plain(unit)
    times = _plain(at_us)
    rows = len(names)
    if times.null_count:
        raise ConfigError(
            f"{prefix}arm/{prefix}bucket/{prefix}reason: at is NULL in {times.null_count} of "
            f"{rows} rows; give every row a time (coalesce(at, now()) for now)"
        )
    if attributes is not None:
        attributes = _text(_plain(attributes))
    if rows == 0:
        return pa.array([], _result_type())
    only = _only_key(names)
    if only is not None:
        return _one(splitter, prefix, only, unit, times, attributes)
    # Several experiments in the column (or NULL ones): each group alone, then back in order.
    parts, order = [], []
    for key in names.unique():
        if key.is_valid:
            where = pc.indices_nonzero(pc.equal(names, key))
            given = None if attributes is None else attributes.take(where)
            part = _one(splitter, prefix, key.as_py(), unit.take(where), times.take(where), given)
            parts.append(_decoded(part))
        else:
            where = pc.indices_nonzero(pc.is_null(names))
            parts.append(pa.nulls(len(where), _result_type()))
        order.append(where.to_numpy())
    inverse = np.empty(rows, np.int64)
    inverse[np.concatenate(order)] = np.arange(rows)
    return pa.concat_arrays(parts).take(pa.array(inverse))


def _one(
    splitter: Splitter, prefix: str, key: str, unit: Any, times: Any, attributes: Any | None
) -> Any:
    """The rows of one experiment, through Splitter.assign_columns. ``attributes``: a JSON text
    per row, None when the call passed none."""
    pa = loaded("pyarrow")
    rows = len(unit)
    columns: dict[str, Any] = {}
    e = splitter.snapshot.experiments.get(key)  # an unknown key: assign_columns names the known
    targeting = None if e is None else e.experiment.targeting
    if targeting is not None:
        if attributes is None:
            example = ", ".join(f"'{a}': {a}" for a in targeting.attributes)
            raise ConfigError(
                f"experiment '{key}' has targeting ({targeting.expression}): give the "
                f"attributes it reads as the fourth argument, e.g. {prefix}arm('{key}', unit, "
                f"now(), {{{example}}})"
            )
        columns.update(_attribute_columns(attributes, key))
    columns[_UNIT] = unit
    micros = np.frombuffer(times.buffers()[1], np.int64, rows, times.offset * 8)
    at, at_column = None, None
    if rows and (micros == micros[0]).all():  # one time for every row: as without an at_column
        at = from_micros(int(micros[0]))
    elif rows:
        columns[_AT] = times.view(pa.timestamp("us"))
        at_column = _AT
    result = splitter.assign_columns(pa.table(columns), _UNIT, [key], at_column=at_column, at=at)
    return _struct(result[key])


def _attribute_columns(attributes: Any, key: str) -> dict[str, Any]:
    """The columns of a JSON object per row (NULL: no attributes), by pyarrow's JSON reader.
    Strings stay strings: the reader would read ``"2026-11-20"`` as a timestamp."""
    pa = loaded("pyarrow")
    pc = require("pyarrow.compute", extra="duckdb", what=_WHAT)
    pj = require("pyarrow.json", extra="duckdb", what=_WHAT)
    rows = len(attributes)
    typ = attributes.type
    lines = pc.binary_join_element_wise(
        pc.fill_null(attributes, pa.scalar("{}", typ)), pa.scalar("", typ), pa.scalar("\n", typ)
    )
    offsets = _offsets(lines)
    data = lines.buffers()[2][offsets[0] : offsets[-1]]
    block = max(len(data) + 1, 1 << 16)
    try:
        table = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(block_size=block),
            parse_options=pj.ParseOptions(newlines_in_values=True),
        )
        texts = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if texts:
            table = pj.read_json(
                pa.BufferReader(data),
                read_options=pj.ReadOptions(block_size=block),
                parse_options=pj.ParseOptions(
                    newlines_in_values=True,
                    explicit_schema=pa.schema([(t, pa.string()) for t in texts]),
                    unexpected_field_behavior="infer",
                ),
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConfigError(
            f"attributes of experiment '{key}': every row must be a STRUCT or a JSON object ({exc})"
        ) from None
    if table.num_columns == 0:
        return {}
    if table.num_rows != rows:
        raise ConfigError(
            f"attributes of experiment '{key}': {table.num_rows} JSON objects in {rows} rows; "
            "give one object per row"
        )
    return {name: table.column(name) for name in table.column_names if name not in (_UNIT, _AT)}


def _result_type() -> Any:
    pa = loaded("pyarrow")
    return pa.struct([("arm", pa.string()), ("bucket", pa.int32()), ("reason", pa.string())])


def _struct(result: BatchAssignment) -> Any:
    """Arm and reason as dictionary arrays (DuckDB reads them as VARCHAR), bucket as int32 (NULL
    for a missing unit, as in Spark and backfill output), built on the result's own buffers."""
    pa = loaded("pyarrow")
    return pa.StructArray.from_arrays(
        list(result.arrow_columns()), names=["arm", "bucket", "reason"]
    )


def _decoded(part: Any) -> Any:
    """A result STRUCT with plain string fields: the parts of several experiments concatenate."""
    pa = loaded("pyarrow")
    fields = [part.field(i) for i in range(3)]
    fields = [f.dictionary_decode() if pa.types.is_dictionary(f.type) else f for f in fields]
    return pa.StructArray.from_arrays(fields, names=["arm", "bucket", "reason"])
