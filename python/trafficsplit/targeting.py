"""Targeting expressions (docs/targeting.md): compiled once in C++, evaluated per request
with :meth:`Targeting.matches` or over whole tables with :meth:`Targeting.mask`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ._core import targeting as _targeting
from ._frames import arrow_column, arrow_table, exports_arrow_stream, masked_parts
from ._shared.checks import check_threads
from ._units import arrow_dictionary_codes, arrow_storage, categorical_parts, loaded
from .errors import ConfigError, TargetingSyntaxError

__all__ = ["Targeting", "TargetingSyntaxError"]

_Column = _targeting.AttributeColumn
_TRUTH = {0: False, 1: None, 2: True}


class Targeting:
    """A compiled targeting expression.

    >>> t = Targeting('country in ["US", "CA"] and semver(app_version) >= "2.3.0"')
    >>> t.matches({"country": "US", "app_version": "2.10.1"})
    True
    >>> t.attributes
    ('country', 'app_version')

    ``lists``: named lists for ``x in @name`` (as pandas ``query`` reads ``@variables``), for
    lists too long to write into the expression (up to 1,000,000 items each).

    Raises :class:`TargetingSyntaxError` (a ``ValueError``) with the line, column and what was
    expected when the expression does not compile.
    """

    __slots__ = ("_compiled", "_expression", "_lists")
    _compiled: _targeting.CompiledTargeting
    _expression: str
    _lists: dict[str, list[Any]] | None

    def __init__(
        self, expression: str | Targeting, lists: Mapping[str, Iterable[Any]] | None = None
    ) -> None:
        if isinstance(expression, Targeting):
            lists = expression._lists if lists is None else lists
            expression = expression.expression
        if not isinstance(expression, str):
            raise ConfigError(
                f"a targeting expression must be a str, got {type(expression).__name__}"
            )
        try:
            expression.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                "a targeting expression must be valid Unicode (it contains a lone surrogate)"
            ) from None
        if lists is not None:
            if not isinstance(lists, Mapping):
                raise ConfigError(
                    f"lists must be a mapping of name -> items, got {type(lists).__name__}"
                )
            bad = [k for k in lists if not isinstance(k, str) or not k.isidentifier()]
            if bad:
                raise ConfigError(f"list names must be identifiers, got {bad[0]!r}")
            copied = {}
            for k, v in lists.items():
                # A str would be split into its characters and None is no list: both are
                # mistakes, not lists.
                if v is None or isinstance(v, str | bytes) or not isinstance(v, Iterable):
                    raise ConfigError(
                        f"lists[{k!r}] must be a list (or another collection) of items, got "
                        f"{type(v).__name__} {v!r:.60}"
                    )
                copied[k] = list(v)
        else:
            copied = None
        self._expression = expression
        self._lists = copied
        self._compiled = _targeting.CompiledTargeting(expression, copied)

    @property
    def expression(self) -> str:
        """The expression as written."""
        return self._expression

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attribute names the expression reads, in order of first use."""
        return tuple(dict.fromkeys(self._compiled.attributes))

    def matches(self, attributes: Mapping[str, Any] | None = None) -> bool:
        """True when the expression is true for one request's attributes.

        Reads only the attributes the expression names; missing ones are null. Never raises
        for values: nulls and type mismatches make comparisons unknown (docs/targeting.md).
        """
        return self._compiled.matches({} if attributes is None else attributes)

    def evaluate(self, attributes: Mapping[str, Any] | None = None) -> bool | None:
        """The three-valued result for one request: True, False, or None for unknown."""
        return _TRUTH[self._compiled.evaluate({} if attributes is None else attributes)]

    def mask(self, data: Any, threads: int | None = None) -> np.ndarray:
        """A numpy bool array: True for the rows where the expression is true.

        ``data``: a pandas or polars DataFrame, a pyarrow Table or RecordBatch, or a mapping of
        column name to array (numpy, pandas, polars, pyarrow, list). polars arrives through the
        Arrow C stream interface (needs pyarrow), without copying. A column the expression
        names but the data lacks is null on every row. No Python object is made per row and no
        column is copied; the GIL is released while the columns are evaluated, except when a
        column holds Python objects (object dtype, lists): those are read where they are, on
        the calling thread with the GIL held.
        """
        nthreads = check_threads(threads)
        rows, lookup = _table(data)
        columns = []
        for name in self._compiled.attributes:  # one column per slot (`a.b` may be two)
            values = lookup(name)
            columns.append(_Column.missing(rows) if values is None else _column(values, rows, name))
        return self._compiled.mask(columns, rows, nthreads)

    def __str__(self) -> str:
        return self._compiled.canonical()

    def __repr__(self) -> str:
        return f"Targeting({self._expression!r})"

    @property
    def lists(self) -> dict[str, list[Any]] | None:
        """The named lists given for ``@name`` references (a copy), or None."""
        return None if self._lists is None else {k: list(v) for k, v in self._lists.items()}

    def _identity(self) -> tuple[Any, ...]:
        lists = (
            ()
            if not self._lists
            else tuple(
                (k, tuple(_hashable(v) for v in items)) for k, items in sorted(self._lists.items())
            )
        )
        return (str(self), lists)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Targeting):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Targeting, (self._expression, self._lists))


def _hashable(value: Any) -> Any:
    return (type(value).__name__, value) if isinstance(value, bool | int | float) else value


# -- tables and columns ----------------------------------------------------------------------


def _table(data: Any) -> tuple[int, Any]:
    """(row count, name -> column or None) for the kinds of tables mask() accepts."""
    pd = loaded("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return len(data), lambda name: data[name] if name in data.columns else None
    if not isinstance(data, Mapping) and exports_arrow_stream(data):  # polars
        data = arrow_table(data, "Targeting.mask")
    pa = loaded("pyarrow")
    if pa is not None and isinstance(data, pa.Table | pa.RecordBatch):
        names = set(data.column_names)
        return data.num_rows, lambda name: data.column(name) if name in names else None
    if isinstance(data, Mapping):
        lengths = {}
        for key, values in data.items():
            try:
                lengths[key] = len(values)
            except TypeError:
                raise ConfigError(
                    f"column {key!r} has no length ({type(values).__name__}); "
                    "give one value per row"
                ) from None
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"{k!r}: {v}" for k, v in lengths.items())
            raise ConfigError(f"columns have different lengths ({listing})")
        rows = next(iter(lengths.values())) if lengths else 0
        return rows, lambda name: data.get(name, None)
    raise ConfigError(
        "mask() expects a pandas or polars DataFrame, a pyarrow Table or RecordBatch, or a "
        f"mapping of column name to array; got {type(data).__name__}"
    )


def _column(values: Any, rows: int, name: str) -> Any:
    pd, pa = loaded("pandas"), loaded("pyarrow")
    if pd is not None and isinstance(values, pd.Series | pd.Index):
        col = _pandas_column(values)
    elif pa is not None and isinstance(values, pa.Array | pa.ChunkedArray):
        col = _arrow_column(values)
    elif exports_arrow_stream(values):  # a polars Series
        col = _arrow_column(arrow_column(values, "Targeting.mask"))
    elif isinstance(values, np.ndarray):
        col = _numpy_column(values)
    else:  # Python objects, read in place while the mask is evaluated
        col = _Column.from_object_rows(values if isinstance(values, list | tuple) else list(values))
    if len(col) != rows:
        raise ConfigError(f"column {name!r} has {len(col)} rows, expected {rows}")
    return col


def _numpy_column(arr: np.ndarray, nulls: np.ndarray | None = None, in_place: bool = True) -> Any:
    """A column of a numpy array; ``in_place``: Python objects are read while the mask is
    evaluated (not for a dictionary's values, which are converted once)."""
    if arr.ndim != 1:
        raise ConfigError(f"attribute columns must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "biufMUS":
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if kind == "f" and arr.dtype.itemsize not in (4, 8):
            arr = arr.astype(np.float64)
        if kind == "M":
            arr = arr.astype(_datetime_unit(arr.dtype))
        arr = np.ascontiguousarray(arr)
        if nulls is not None:
            nulls = np.ascontiguousarray(nulls, dtype=bool)
            if not nulls.any():  # a mask with nothing to mark costs a pass per clause
                nulls = None
        # Fixed-width text is read by the core: pyarrow would cut a value at its first NUL.
        return _Column.from_numpy(arr, nulls)
    if kind == "T":  # numpy 2 variable-width StringDType
        return _object_column(arr.tolist(), in_place)
    if kind == "O":
        return _object_column(arr, in_place)
    return _Column.other(len(arr))


def _datetime_unit(dtype: np.dtype) -> str:
    """The datetime64 dtype the core reads for `dtype`: s, ms, us and ns as they are (no
    conversion, so no overflow), coarser units as seconds, finer ones as nanoseconds."""
    unit, _ = np.datetime_data(dtype)
    if unit in ("s", "ms", "us", "ns"):
        return f"datetime64[{unit}]"
    return "datetime64[ns]" if unit in ("ps", "fs", "as") else "datetime64[s]"


def _object_column(objects: np.ndarray | list[Any], in_place: bool = True) -> Any:
    """Python objects (an object array or a list), read where they are during the evaluation
    (under the GIL, on the calling thread): no copy of the column; or converted once."""
    if in_place:
        return _Column.from_object_rows(objects)
    return _Column.from_objects(objects)


def _arrow_column(values: Any) -> Any:
    pa = loaded("pyarrow")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    typ = values.type
    if pa.types.is_dictionary(typ):
        return _Column.from_dictionary(
            arrow_dictionary_codes(values), _arrow_column(values.dictionary)
        )
    if pa.types.is_null(typ):
        return _Column.missing(len(values))
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        # Read in their own unit: no cast to nanoseconds, which would not hold 9999-12-31.
        if pa.types.is_date32(typ):
            values = values.cast(pa.date64())
        return _Column.from_arrow(*values.__arrow_c_array__())
    if pa.types.is_boolean(typ) or pa.types.is_float16(typ):
        nulls = values.is_null().to_numpy(zero_copy_only=False)
        filled = values.fill_null(False if pa.types.is_boolean(typ) else 0)
        arr = filled.to_numpy(zero_copy_only=False)
        return _numpy_column(np.asarray(arr), nulls)
    if (
        pa.types.is_integer(typ)
        or pa.types.is_floating(typ)
        or pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
        or str(typ) in ("string_view", "binary_view")
    ):
        return _Column.from_arrow(*values.__arrow_c_array__())
    return _Column.other(len(values))


def _pandas_column(series: Any, in_place: bool = True) -> Any:
    """A column of a pandas Series; ``in_place`` as in :func:`_numpy_column`."""
    pd = loaded("pandas")
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # The codes are passed at their own width (int8/int16/...): no widening copy.
        codes, categories = categorical_parts(series)
        values = _pandas_column(pd.Series(categories), in_place=False)
        return _Column.from_dictionary(codes, values)
    if isinstance(dtype, pd.DatetimeTZDtype):
        naive = pd.Series(series).dt.tz_convert("UTC").dt.tz_localize(None)
        return _numpy_column(naive.to_numpy())
    arrow = arrow_storage(series)
    if arrow is not None:
        return _arrow_column(arrow)
    array = series.array
    parts = masked_parts(array)
    if parts is not None:  # nullable Int64, Float64, boolean
        return _numpy_column(*parts)
    if isinstance(dtype, pd.StringDtype):  # python storage: its object array, not a copy
        return _object_column(series.to_numpy(dtype=object), in_place)
    if isinstance(dtype, np.dtype):
        return _numpy_column(series.to_numpy(), in_place=in_place)
    return _object_column(series.to_numpy(dtype=object), in_place)
