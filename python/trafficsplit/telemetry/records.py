"""Exposure records: one per decision, with the assignment probability that inverse-propensity
analysis needs (docs/telemetry.md). :class:`ExposureBatch` is the one place records change
form: rows of the writer thread, records, JSON Lines, Arrow tables; :func:`bulk_table` builds
the records of a whole frame column by column, and :func:`table_jsonl` writes such a table as
JSON Lines column by column, the same bytes as the records would be.

>>> import tempfile, trafficsplit as ts
>>> folder = tempfile.mkdtemp()
>>> sp = ts.Splitter({"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]},
...                  exposures=ts.JsonlSink(folder))
>>> _ = sp.assign("e", "user-1")
>>> sp.close()
>>> ts.read_exposures(folder)[["unit", "experiment", "probability"]].values.tolist()
[['user-1', 'e', 0.5]]
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from .._core import telemetry as _telemetry
from .._frames import object_values, without_views
from .._optional import require
from .._shared.keys import unit_key_or_none

if TYPE_CHECKING:
    import pyarrow as pa

    from ..experiment import Experiment

__all__ = [
    "EXPOSURE_FIELDS",
    "ExposureBatch",
    "ExposureInfo",
    "ExposureRecord",
    "bulk_table",
    "exposure_schema",
    "table_jsonl",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_T = TypeVar("_T")


class ExposureRecord(NamedTuple):
    """One exposure: a unit that got an arm. Field order is the column order of every sink."""

    timestamp: _dt.datetime  # the decision's time (``at``), UTC, microseconds
    unit: str | None  # canonical unit text (integers as decimal text, bytes as "b:<hex>")
    experiment: str
    arm: str
    bucket: int  # the unit's arm bucket, -1 when the unit is missing
    reason: str  # assigned, sticky, override or propagated
    version: str  # the configuration snapshot's version
    probability: float  # P(this arm) under the allocation step in force at ``timestamp``
    attributes: dict[str, Any] | None  # the chosen request attributes
    request_id: str | None
    evaluated_arm: str | None  # with reason propagated: this service's own evaluation
    mismatch: bool  # with reason propagated: evaluated_arm differs from arm
    # An upstream arm for this experiment: "served" (reason propagated), or why it was refused
    # (untrusted, unsigned, unknown_key, bad_signature, unknown_arm, version_mismatch, override).
    propagation: str | None = None


EXPOSURE_FIELDS: tuple[str, ...] = ExposureRecord._fields


def exposure_schema() -> pa.Schema:
    """The Arrow schema of exposure tables (Parquet files, bulk batches): experiment, arm,
    reason and version are dictionary-encoded strings; ``attributes`` is a JSON object in
    text."""
    pa = require("pyarrow", what="exposure_schema")

    names = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("unit", pa.string()),
            ("experiment", names),
            ("arm", names),
            ("bucket", pa.int32()),
            ("reason", names),
            ("version", names),
            ("probability", pa.float64()),
            ("attributes", pa.string()),
            ("request_id", pa.string()),
            ("evaluated_arm", pa.string()),
            ("mismatch", pa.bool_()),
            ("propagation", pa.string()),
        ]
    )


class ExposureBatch(Sequence[ExposureRecord]):
    """The records of one flush, as sinks receive them: a sequence of :class:`ExposureRecord`
    (built on first access) that the file sinks read column-wise instead, as JSON Lines
    (:meth:`jsonl`) or an Arrow table (:meth:`table`)."""

    __slots__ = ("_records", "_rows")

    _rows: list[tuple[Any, ...]]
    _records: list[ExposureRecord] | None

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        # Rows are ExposureRecord fields with the time as int microseconds since the epoch.
        self._rows = rows
        self._records = None

    @classmethod
    def of(cls, records: Iterable[ExposureRecord]) -> ExposureBatch:
        """``records`` as a batch (the batch itself when it is one)."""
        if isinstance(records, ExposureBatch):
            return records
        return cls([(_micros(r.timestamp), *r[1:]) for r in records])

    @classmethod
    def from_table(cls, table: pa.Table) -> ExposureBatch:
        """The rows of an Arrow table with :func:`exposure_schema`."""
        cols: list[Any] = [_python_values(table.column(f)) for f in EXPOSURE_FIELDS[1:]]
        at = EXPOSURE_FIELDS.index("attributes") - 1
        cols[at] = [None if a is None else json.loads(a) for a in cols[at]]
        # Exact integers (a null would turn the column into floats), None where null.
        stamps = table.column("timestamp").cast("int64")
        us = stamps.fill_null(0).to_numpy().tolist()
        if stamps.null_count:
            for i in np.flatnonzero(stamps.is_null().to_numpy(zero_copy_only=False)).tolist():
                us[i] = None
        return cls(list(zip(us, *cols, strict=True)))

    @classmethod
    def from_json(cls, objects: Iterable[Mapping[str, Any]]) -> ExposureBatch:
        """The records of parsed JSON Lines (:meth:`jsonl`); absent fields are null."""
        fields = EXPOSURE_FIELDS[1:]
        return cls(
            [
                (
                    _micros(_dt.datetime.fromisoformat(o["timestamp"])),
                    *(o.get(f) for f in fields),
                )
                for o in objects
            ]
        )

    def __len__(self) -> int:
        return len(self._rows)

    def _all(self) -> list[ExposureRecord]:
        if self._records is None:
            new = tuple.__new__
            self._records = [
                new(ExposureRecord, (_EPOCH + _dt.timedelta(microseconds=r[0]), *r[1:]))
                for r in self._rows
            ]
        return self._records

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[ExposureRecord]:
        return iter(self._all())

    def encodable(
        self, encode: Callable[[ExposureBatch], _T]
    ) -> tuple[list[_T], list[int], list[str]]:
        """``encode`` (for example ``ExposureBatch.table``) of the records that it can encode:
        the encoded parts in record order, the positions of the records set aside and, for
        each, the name of the error that refused it (never the error's text, which may quote
        the record).

        The whole batch is encoded in one go; only when that fails is it halved until the
        records that fail are alone, so a batch without a bad record pays nothing extra.
        Errors of the machine rather than of a record (memory, a missing module) propagate."""
        parts: list[_T] = []
        bad: list[int] = []
        why: list[str] = []
        rows = self._rows

        def visit(lo: int, hi: int) -> None:
            try:
                parts.append(encode(self if hi - lo == len(rows) else ExposureBatch(rows[lo:hi])))
            except (MemoryError, ImportError):
                raise
            except Exception as exc:  # any other error is this record's (or one of these)
                if hi - lo == 1:
                    bad.append(lo)
                    why.append(type(exc).__name__)
                    return
                mid = (lo + hi) // 2
                visit(lo, mid)
                visit(mid, hi)

        if rows:
            visit(0, len(rows))
        return parts, bad, why

    def without(self, positions: Sequence[int]) -> ExposureBatch:
        """The batch less the records at ``positions``."""
        if not positions:
            return self
        drop = set(positions)
        return ExposureBatch([r for i, r in enumerate(self._rows) if i not in drop])

    def jsonl_bytes(self) -> bytes:
        """:meth:`jsonl` as UTF-8; a lone surrogate anywhere raises ``UnicodeEncodeError``."""
        return self.jsonl().encode("utf-8")

    def jsonl(self) -> str:
        """The records as JSON Lines, with constant parts encoded once per batch. Raises on a
        record that JSON cannot hold as it is (a text field that is not text, a bucket that is
        not an integer, a probability that is not a finite float, attributes json cannot
        encode with sorted keys), so that no line misstates its record."""
        rows = self._rows
        if not rows:
            return ""
        stamps = np.datetime_as_string(
            np.fromiter((r[0] for r in rows), np.int64, len(rows)).view("datetime64[us]"),
            unit="us",
        ).tolist()
        heads: dict[tuple[str, str], str] = {}
        middles: dict[tuple[str, str, float], str] = {}
        plain_tail = '"request_id":null,"evaluated_arm":null,"mismatch":false,"propagation":null}\n'
        out = []
        integer = int
        for r, stamp in zip(rows, stamps, strict=True):
            _, unit, key, arm, bucket, reason, version, p, attrs, rid, evaluated, mismatch, prop = r
            head = heads.get((key, arm))
            if head is None:
                head = heads[(key, arm)] = f'"experiment":{_esc(key)},"arm":{_esc(arm)},"bucket":'
            middle = middles.get((reason, version, p))
            if middle is None:
                if not isinstance(p, float) or not math.isfinite(p):
                    raise TypeError("probability must be a finite float")
                middle = middles[(reason, version, p)] = (
                    f',"reason":{_esc(reason)},"version":{_esc(version)},"probability":{p!r},'
                    '"attributes":'
                )
            if rid is None and evaluated is None and not mismatch and prop is None:
                tail = plain_tail
            else:
                tail = (
                    f'"request_id":{_text(rid)},"evaluated_arm":{_text(evaluated)},'
                    f'"mismatch":{"true" if mismatch else "false"},'
                    f'"propagation":{_text(prop)}}}\n'
                )
            unit_text = _esc(unit) if type(unit) is str else _text(unit)
            if type(bucket) is not integer:  # a str would be written as a number
                raise TypeError("bucket must be an int")
            out.append(
                f'{{"timestamp":"{stamp}+00:00","unit":{unit_text},'
                f"{head}{bucket}{middle}{'null' if attrs is None else _attributes_text(attrs)},"
                f"{tail}"
            )
        return "".join(out)

    def table(self) -> pa.Table:
        """The records as an Arrow table with :func:`exposure_schema`."""
        pa = require("pyarrow", what="ExposureBatch.table")

        schema = exposure_schema()
        cols = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(schema)
        arrays = [pa.array(np.asarray(cols[0], np.int64)).cast(schema.field(0).type)]
        arrays += [_column(field, cols[i]) for i, field in enumerate(schema) if i > 0]
        for i in _REQUIRED:
            if arrays[i].null_count:
                raise ValueError(f"exposure records need a {schema.field(i).name}")
        return pa.Table.from_arrays(arrays, schema=schema)


# Columns every record fills (the others may be null).
_REQUIRED = tuple(
    EXPOSURE_FIELDS.index(f)
    for f in ("experiment", "arm", "bucket", "reason", "version", "probability")
)


# -- the probability of an arm ---------------------------------------------------------------


class ExposureInfo:
    """What the writer needs of one experiment of one snapshot: key, arm names, version and the
    experiment's per-step arm probabilities (:meth:`Experiment.probability_table`)."""

    __slots__ = ("_experiment", "_only", "arm_names", "key", "version")

    key: str
    version: str
    arm_names: tuple[str, ...]
    _experiment: Experiment
    _only: list[float] | None

    def __init__(self, key: str, version: str, experiment: Experiment) -> None:
        self.key = key
        self.version = version
        self.arm_names = tuple(experiment.arm_names)
        self._experiment = experiment
        # the one step's row, for the experiments that never changed their allocation
        self._only = None

    def probability(self, at_us: int, arm_index: int, reason: str) -> float:
        if reason == "override":
            return 1.0
        only = self._only
        if only is not None:
            return only[arm_index]
        table = self._experiment.probability_table()
        if len(table) == 1:
            self._only = only = table[0].tolist()
            return only[arm_index]
        return float(table[max(self._experiment.step_at(at_us), 0), arm_index])

    def probabilities(self, at_us: np.ndarray, arm_index: np.ndarray) -> np.ndarray:
        table = self._experiment.probability_table()
        if len(table) == 1:
            return table[0].take(arm_index)
        steps = np.maximum(self._experiment.steps_at(at_us), 0)
        return table[steps, arm_index]


# -- record conversions ------------------------------------------------------------------------

_esc = json.encoder.encode_basestring


def _text(v: Any) -> str:
    """A text field as JSON: a string or null; anything else is refused."""
    if v is None:
        return "null"
    if type(v) is not str:
        raise TypeError("a text field holds a value that is not text")
    return _esc(v)


def _attributes_text(a: Any) -> str | None:
    """Attributes as a JSON object, keys sorted (the same text in every sink); values json
    cannot encode are written as their ``str()``."""
    if a is None:
        return None
    if not isinstance(a, dict):
        raise TypeError("attributes must be a dict")
    return json.dumps(a, default=str, ensure_ascii=False, sort_keys=True)


def _dictionary(values: pa.Array) -> pa.Array:
    pa = require("pyarrow", what="exposure tables")

    d = values.dictionary_encode()
    return pa.DictionaryArray.from_arrays(d.indices.cast(pa.int32()), d.dictionary)


def _micros(t: _dt.datetime) -> int:
    """Microseconds since the epoch of an aware time."""
    return (t - _EPOCH) // _dt.timedelta(microseconds=1)


def _column(field: pa.Field, values: Sequence[Any]) -> pa.Array:
    """One column of an exposure table from Python values (``attributes`` as objects)."""
    pa = require("pyarrow", what="exposure tables")

    if field.name == "attributes":
        values = [_attributes_text(a) for a in values]
    if pa.types.is_dictionary(field.type):
        return _dictionary(pa.array(values, pa.string()))
    return pa.array(values, type=field.type)


# -- bulk records ----------------------------------------------------------------------------


def bulk_table(
    info: ExposureInfo,
    units: Any,
    rows: np.ndarray,
    at_us: np.ndarray,
    arm: np.ndarray,
    bucket: np.ndarray,
    reason: np.ndarray,
    reason_names: Sequence[str],
    attributes: Any = None,
    attribute_names: Sequence[str] = (),
) -> pa.Table:
    """Exposure records for the ``rows`` of a frame that got an arm, built column by column."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")

    n = len(rows)
    schema = exposure_schema()
    every = n == len(arm)  # no row left out: no gathers
    take = None if every else pa.array(rows)
    arm_rows = (arm if every else arm[rows]).astype(np.int32)
    reason_rows = (reason if every else reason[rows]).astype(np.int32)
    at_rows = np.ascontiguousarray(at_us if every else at_us[rows], np.int64)
    probability = info.probabilities(at_rows, arm_rows)
    override = reason_names.index("override")
    if (reason_rows == override).any():
        probability = np.where(reason_rows == override, 1.0, probability)
    zeros = np.zeros(n, np.int32)
    nulls = pa.nulls(n, pa.string())
    columns = [
        pa.array(at_rows).cast(schema.field("timestamp").type),
        _unit_texts(units, take),
        _coded(zeros, [info.key]),
        _coded(arm_rows, info.arm_names),
        pa.array(np.ascontiguousarray(bucket if every else bucket[rows], np.int32)),
        _coded(reason_rows, reason_names),
        _coded(zeros, [info.version]),
        pa.array(probability, pa.float64()),
        _attribute_objects(attributes, attribute_names, rows) if attribute_names else nulls,
        nulls,
        nulls,
        pa.array(np.zeros(n, np.bool_)),
        nulls,
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _coded(codes: np.ndarray, names: Sequence[str]) -> pa.Array:
    """A dictionary-encoded column: ``names`` indexed by ``codes``."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")

    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(list(names)))


def _unit_texts(units: Any, take: pa.Array | None) -> pa.Array:
    """Canonical unit text for the taken rows: str as is, integers as decimal text, bytes as
    ``b:<hex>``; one object per row only for mixed or binary columns."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")

    try:
        arr = pa.array(units, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is not None:
        arr = without_views(arr)
        if take is not None:
            arr = arr.take(take)
        t = arr.type
        if pa.types.is_dictionary(t):
            arr = arr.dictionary_decode()
            t = arr.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t):
            return arr.cast(pa.string())
    values = object_values(units) if hasattr(units, "to_numpy") else np.asarray(units)
    rows = values if take is None else values[take.to_numpy()]
    return pa.array([unit_key_or_none(v) for v in rows], pa.string())


def _attribute_objects(frame: Any, names: Sequence[str], rows: np.ndarray) -> pa.Array:
    """The chosen columns of each row as JSON object text, encoding each distinct value once."""
    pa = require("pyarrow", what="Splitter.assign_frame(log_exposures=True)")
    pc = require("pyarrow.compute", what="Splitter.assign_frame(log_exposures=True)")
    if not isinstance(frame, pa.Table):
        pd = require("pandas", what="Splitter.assign_frame(log_exposures=True)")

    arrow = isinstance(frame, pa.Table)  # a pyarrow Table, or a polars frame read as one
    present = [c for c in names if c in (frame.column_names if arrow else frame.columns)]
    if not present:
        return pa.nulls(len(rows), pa.string())
    parts: list[Any] = []
    for i, name in enumerate(sorted(present)):
        if arrow:
            column = without_views(frame.column(name)).take(pa.array(rows)).combine_chunks()
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            encoded = pc.dictionary_encode(column)
            uniques = encoded.dictionary.to_pylist()
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        else:
            codes, uniques = pd.factorize(frame[name].iloc[rows], use_na_sentinel=True)
        texts = [json.dumps(_plain(v), default=str, ensure_ascii=False) for v in uniques]
        texts.append("null")
        codes = np.where(codes < 0, len(texts) - 1, codes).astype(np.int32)
        prefix = ("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
        parts.append(prefix)
        parts.append(pa.DictionaryArray.from_arrays(codes, texts).cast(pa.string()))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _python_values(column: Any) -> list[Any]:
    """A column's values as Python objects. Text that is not UTF-8 (Arrow does not check what
    every producer hands over) is decoded with ``surrogateescape``: its record is then one
    that no sink can encode, set aside alone rather than failing its whole table."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        pa = require("pyarrow", what="exposure tables")

        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        raw = column.cast(pa.binary()).to_pylist()
        return [None if v is None else v.decode("utf-8", "surrogateescape") for v in raw]


# -- bulk records as JSON Lines ----------------------------------------------------------------


def table_jsonl(
    table: pa.Table, chunk_bytes: int = 1 << 20
) -> Iterator[tuple[Any, list[int], list[str]]]:
    """An exposure table (:func:`exposure_schema`) as JSON Lines, a chunk of whole lines at a
    time: the bytes, line for line, that :meth:`ExposureBatch.jsonl_bytes` writes for the
    table's records. Each chunk comes with the positions in the table of the records it leaves
    out because they cannot be encoded, and the names of the errors that refused them (as
    :meth:`ExposureBatch.encodable` gives them). A chunk's lines (a buffer of about
    ``chunk_bytes``, reused) are valid until the next chunk is asked for.

    The lines are written column by column in C++ from the Arrow buffers (dictionary values
    escaped once; attributes re-encoded once per distinct text, as a record's would be). The
    rows it leaves to the record path (a null where a value is needed, text that is not UTF-8,
    a probability that is not finite, a time outside the years 0000-9999, attributes that do
    not encode) take that path one at a time, so they are written or set aside exactly as in
    :class:`ExposureBatch`. A table of another layout is encoded record by record."""
    if not table.schema.equals(exposure_schema()):
        parts, refused, names = ExposureBatch.from_table(table).encodable(ExposureBatch.jsonl_bytes)
        yield b"".join(parts), refused, names
        return
    # Every batch's attributes first: text that is not JSON fails the whole table, as it does
    # on the record path, before any line is handed out.
    batches = [
        (b, b.set_column(_ATTRIBUTES, "attributes", _attribute_texts(b[_ATTRIBUTES])))
        for b in table.to_batches()
    ]
    buffer = np.empty(chunk_bytes, np.uint8)
    start = 0
    for batch, coded in batches:
        encoder = _telemetry.ExposureJsonl(*coded.__arrow_c_array__())
        row = 0
        while row < batch.num_rows:
            end, size, need, skipped, at = encoder.write(buffer, row)
            if end == row:  # one line longer than the buffer
                buffer = np.empty(max(need, 2 * len(buffer)), np.uint8)
                continue
            lines: Any = buffer.data[:size]
            bad: list[int] = []
            why: list[str] = []
            if len(skipped):
                lines = _with_record_lines(batch, lines, skipped, at, start, bad, why)
            yield lines, bad, why
            row = end
        start += batch.num_rows


_ATTRIBUTES = EXPOSURE_FIELDS.index("attributes")


def _attribute_texts(column: pa.Array) -> pa.DictionaryArray:
    """The attributes column as dictionary-encoded JSON text, each distinct text in the form
    :meth:`ExposureBatch.jsonl` writes it (parsed, then keys sorted); null where that fails,
    which leaves its rows to the record path."""
    pa = require("pyarrow", what="table_jsonl")

    if column.null_count == len(column):
        return pa.DictionaryArray.from_arrays(
            pa.nulls(len(column), pa.int32()), pa.array([], pa.string())
        )
    coded = column.dictionary_encode()
    texts = [
        None if t is None else _attributes_line_text(t) for t in _python_values(coded.dictionary)
    ]
    return pa.DictionaryArray.from_arrays(coded.indices, pa.array(texts, pa.string()))


def _attributes_line_text(text: str) -> str | None:
    """Attributes in the form a line holds them, from a table's text; None when the record
    path would refuse them (it then says why). Raises, as the record path does, on text that
    is not JSON."""
    a = json.loads(text)
    try:
        line = "null" if a is None else _attributes_text(a)
        assert line is not None
        line.encode("utf-8")
    except (MemoryError, ImportError):
        raise
    except Exception:
        return None
    return line


def _with_record_lines(
    batch: pa.RecordBatch,
    lines: Any,
    skipped: np.ndarray,
    at: np.ndarray,
    start: int,
    bad: list[int],
    why: list[str],
) -> bytes:
    """``lines`` with the lines of the ``skipped`` rows of ``batch`` put in at their offsets
    ``at``, each encoded alone by the record path; the rows it refuses go into ``bad`` (as
    positions from ``start``) and ``why``."""
    pa = require("pyarrow", what="table_jsonl")

    rows = ExposureBatch.from_table(pa.Table.from_batches([batch]).take(pa.array(skipped)))._rows
    view = memoryview(lines)
    out: list[Any] = []
    done = 0
    for k, (row, offset) in enumerate(zip(skipped.tolist(), at.tolist(), strict=True)):
        out.append(view[done:offset])
        done = offset
        parts, refused, names = ExposureBatch(rows[k : k + 1]).encodable(ExposureBatch.jsonl_bytes)
        out += parts
        if refused:
            bad.append(start + row)
            why += names
    out.append(view[done:])
    return b"".join(out)
