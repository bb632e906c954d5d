"""Turns the collections people have into columns the core kernels read without copying.

Each input becomes a list of chunks: a core ``Column`` (numpy buffers, Arrow buffers, or the
pointers of a Python list), or a dictionary chunk (integer codes into a smaller column of
distinct ids: pandas categoricals and Arrow dictionary arrays), evaluated once per distinct id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._core import assignment as _assignment
from ._core import hashing as _hashing
from ._frames import arrow_column, exports_arrow_stream, is_polars_frame, masked_parts
from ._optional import loaded
from .errors import UnitTypeError

Column = _hashing.Column

_FLOAT_HINT = (
    "float unit ids are refused by the hash contract (1.0 would silently become '1.0'). "
    "If they are whole numbers with NaN for missing, convert them first, e.g. "
    "series.astype('Int64') or array.astype('int64')"
)


@dataclass(frozen=True)
class SequenceChunk:
    """Python objects (a list, tuple or object array), read by the kernel under the GIL."""

    values: Any

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class DictionaryChunk:
    """Rows given as codes (-1 for missing) into a column of distinct unit ids."""

    codes: np.ndarray
    values: list[Column | SequenceChunk | DictionaryChunk]

    def __len__(self) -> int:
        return len(self.codes)


Chunk = Column | SequenceChunk | DictionaryChunk


def spread_by_codes(
    parts: Sequence[tuple[np.ndarray, ...]],
    missing: tuple[Any, ...],
    dtypes: tuple[Any, ...],
    codes: np.ndarray,
    threads: int,
    out: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, ...]:
    """The results of a dictionary-encoded column's rows from those of its values (``parts``,
    one tuple of arrays per chunk of values): each output is the values' results concatenated
    with the result for a missing unit appended last, gathered by code in the core (code -1
    reads that last entry). Writes into ``out`` when given."""
    if out is None:
        out = tuple(np.empty(len(codes), d) for d in dtypes)
    for k, target in enumerate(out):
        table = np.concatenate([p[k] for p in parts] + [np.array([missing[k]], dtypes[k])])
        _assignment.take_by_codes(table, codes, target, threads)
    return out


def _pandas() -> Any:
    return loaded("pandas")


def _pyarrow() -> Any:
    return loaded("pyarrow")


def arrow_dictionary_codes(arr: Any) -> np.ndarray:
    """The indices of an Arrow dictionary array, -1 where null: signed ones at their own
    width, unsigned ones as int64 (room for the -1)."""
    indices = arr.indices
    valid = None
    if indices.null_count:
        valid = indices.is_valid().to_numpy(zero_copy_only=False)
        indices = indices.fill_null(0)
    codes = indices.to_numpy(zero_copy_only=False)
    if codes.dtype.kind == "u":
        codes = codes.astype(np.int64)
    if valid is not None:
        codes = np.where(valid, codes, np.array(-1, codes.dtype))
    return np.ascontiguousarray(codes)


def categorical_parts(obj: Any) -> tuple[np.ndarray, Any]:
    """(codes at their own width, -1 for missing; categories) of a categorical Series or Index."""
    # The Categorical's own codes: `Series.cat.codes` would copy them into a new Series.
    categorical = obj.array
    return np.ascontiguousarray(categorical.codes), categorical.categories


def arrow_storage(obj: Any) -> Any:
    """The Arrow data behind an Arrow-backed pandas Series or Index, else None."""
    pd = _pandas()
    array = obj.array
    if hasattr(array, "__arrow_array__") and (
        isinstance(obj.dtype, pd.ArrowDtype)
        or getattr(obj.dtype, "storage", None) in ("pyarrow", "pyarrow_numpy")
    ):
        return array.__arrow_array__()
    return None


def _refuse_dtype(dtype: Any, where: str = "unit ids") -> UnitTypeError:
    kind = getattr(dtype, "kind", "?")
    if kind == "f":
        return UnitTypeError(f"{where} have dtype {dtype}; {_FLOAT_HINT}")
    if kind == "b":
        return UnitTypeError(f"{where} have dtype {dtype}; bool unit ids are refused")
    return UnitTypeError(
        f"{where} have dtype {dtype}; expected integers, strings or bytes "
        "(numpy, pandas or Arrow columns of them)"
    )


def _from_numpy(arr: np.ndarray) -> list[Chunk]:
    if arr.ndim != 1:
        raise UnitTypeError(f"unit ids must be one-dimensional, got an array of shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "iuUS" and not arr.dtype.isnative:  # the kernels read native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if kind in "iu":
        return [Column.from_numpy(np.ascontiguousarray(arr))]
    if kind in "US":
        return [Column.from_numpy(np.ascontiguousarray(arr))]
    if kind == "O":
        return [SequenceChunk(arr)]
    if kind == "T":  # numpy 2 variable-width StringDType
        return [SequenceChunk(arr.astype(object))]
    raise _refuse_dtype(arr.dtype)


def _from_arrow_array(arr: Any) -> list[Chunk]:
    pa = _pyarrow()
    typ = arr.type
    if pa.types.is_dictionary(typ):
        return [DictionaryChunk(arrow_dictionary_codes(arr), _from_arrow_array(arr.dictionary))]
    if pa.types.is_null(typ):
        n = len(arr)
        return [Column.from_numpy(np.zeros(n, np.int64), np.ones(n, dtype=bool))]
    if (
        pa.types.is_floating(typ)
        or pa.types.is_boolean(typ)
        or not (
            pa.types.is_integer(typ)
            or pa.types.is_string(typ)
            or pa.types.is_large_string(typ)
            or pa.types.is_binary(typ)
            or pa.types.is_large_binary(typ)
            or str(typ) in ("string_view", "binary_view")
        )
    ):
        raise _refuse_dtype(_ArrowDtypeView(typ))
    schema, array = arr.__arrow_c_array__()
    return [Column.from_arrow(schema, array)]


class _ArrowDtypeView:
    """Gives an Arrow type the `.kind` the error messages look at."""

    def __init__(self, typ: Any) -> None:
        pa = _pyarrow()
        self.typ = typ
        self.kind = "f" if pa.types.is_floating(typ) else "b" if pa.types.is_boolean(typ) else "?"

    def __str__(self) -> str:
        return f"{self.typ} (Arrow)"


def _from_arrow(obj: Any) -> list[Chunk]:
    pa = _pyarrow()
    if isinstance(obj, pa.ChunkedArray):
        if obj.num_chunks == 0:
            return [SequenceChunk([])]
        chunks: list[Chunk] = []
        for chunk in obj.chunks:
            chunks.extend(_from_arrow_array(chunk))
        return chunks
    return _from_arrow_array(obj)


def _from_pandas(obj: Any) -> list[Chunk]:
    pd = _pandas()
    dtype = obj.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes, categories = categorical_parts(obj)
        if len(categories) == 0:  # every row missing; the empty categories' dtype means nothing
            return [Column.from_numpy(np.zeros(len(codes), np.int64), np.ones(len(codes), bool))]
        return [DictionaryChunk(codes, chunks_of(categories))]
    arrow = arrow_storage(obj)
    if arrow is not None:
        return _from_arrow(arrow)
    array = obj.array
    if isinstance(dtype, pd.StringDtype):
        return [SequenceChunk(obj.to_numpy(dtype=object))]
    parts = masked_parts(array)
    if parts is not None:  # nullable integers
        if dtype.kind in "iu":
            data, mask = (np.ascontiguousarray(x) for x in parts)
            return [Column.from_numpy(data, mask)]
        raise _refuse_dtype(dtype)
    if isinstance(dtype, np.dtype):
        return _from_numpy(obj.to_numpy())
    raise _refuse_dtype(dtype)


@dataclass(frozen=True)
class UnitBatch:
    """Unit ids converted once into the chunks the kernels read, with the row count and the
    input's pandas index (if any): several experiments can share one conversion."""

    chunks: list[Chunk]
    rows: int
    index: Any = None

    @classmethod
    def of(cls, units: Any) -> UnitBatch:
        if isinstance(units, UnitBatch):
            return units
        chunks = chunks_of(units)
        index = getattr(units, "index", None) if hasattr(units, "iloc") else None
        return cls(chunks, sum(len(c) for c in chunks), index)


def chunks_of(units: Any, caller: str = "assign_batch", scalar: str = "assign") -> list[Chunk]:
    """The chunks of a batch of unit ids, or a precise error for what cannot hold ids."""
    if isinstance(units, str | bytes):
        raise UnitTypeError(
            f"{caller} expects a collection of unit ids, got a single {type(units).__name__}; "
            f"use {scalar}() for one unit"
        )
    if isinstance(units, list | tuple):
        return [SequenceChunk(units)]
    if isinstance(units, np.ndarray):
        return _from_numpy(units)
    pd = _pandas()
    if pd is not None and isinstance(units, pd.Series | pd.Index):
        return _from_pandas(units)
    if pd is not None and isinstance(units, pd.DataFrame):
        raise UnitTypeError(
            f"{caller} expects one column of unit ids, got a DataFrame; pass df['user_id']"
        )
    if is_polars_frame(units):
        raise UnitTypeError(
            f"{caller} expects one column of unit ids, got a DataFrame; pass df['user_id']"
        )
    if exports_arrow_stream(units) and not hasattr(units, "__arrow_c_array__"):  # polars Series
        units = arrow_column(units, caller)
    pa = _pyarrow()
    if pa is not None and isinstance(units, pa.Array | pa.ChunkedArray):
        return _from_arrow(units)
    if hasattr(units, "__arrow_c_array__"):
        schema, array = units.__arrow_c_array__()
        return [Column.from_arrow(schema, array)]
    if hasattr(units, "__array__") and not hasattr(units, "__iter__"):
        return _from_numpy(np.asarray(units))
    if hasattr(units, "__iter__"):
        return [SequenceChunk(list(units))]
    raise UnitTypeError(
        f"{caller} expects a collection of unit ids (list, numpy array, pandas Series, "
        f"pyarrow array), got {type(units).__name__}"
    )


def chunk_length(chunk: Chunk) -> int:
    return len(chunk)
