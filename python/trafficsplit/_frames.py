"""DataFrames and columns of libraries other than pandas, read through the Arrow PyCapsule
interface (``__arrow_c_stream__``): polars, and anything else that exports Arrow streams."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._optional import loaded, require
from .errors import ConfigError


def is_pandas(obj: Any) -> bool:
    """A pandas DataFrame, Series or Index."""
    pd = loaded("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame | pd.Series | pd.Index)


def is_polars_frame(obj: Any) -> bool:
    pl = loaded("polars")
    return pl is not None and isinstance(obj, pl.DataFrame)


def exports_arrow_stream(obj: Any) -> bool:
    """An object that is not pandas or pyarrow and exports an Arrow C stream (polars)."""
    if is_pandas(obj) or type(obj).__module__.startswith("pyarrow"):
        return False
    return hasattr(obj, "__arrow_c_stream__")


def _pyarrow_for(obj: Any, what: str) -> Any:
    # A polars user installs the polars extra, which brings pyarrow: name that one.
    extra = "polars" if type(obj).__module__.startswith("polars") else "arrow"
    return require("pyarrow", extra=extra, what=what)


def arrow_table(obj: Any, what: str) -> Any:
    """A pyarrow Table of a frame exporting an Arrow C stream; no copy of the buffers."""
    return _pyarrow_for(obj, what).table(obj)


def arrow_column(obj: Any, what: str) -> Any:
    """A pyarrow ChunkedArray of a column exporting an Arrow C stream (a polars Series)."""
    return _pyarrow_for(obj, what).chunked_array(obj)


def as_pandas_frame(data: Any, what: str) -> Any:
    """``data`` as it is when pandas or a mapping, else a pandas DataFrame of an Arrow table or
    of a frame exporting an Arrow C stream."""
    if isinstance(data, Mapping) or is_pandas(data):
        return data
    pa = loaded("pyarrow")
    if pa is not None and isinstance(data, pa.Table):
        require("pandas", what=what)
        return data.to_pandas()
    if exports_arrow_stream(data):
        table = arrow_table(data, what)
        require("pandas", what=what)
        return table.to_pandas()
    return data


class FrameInput:
    """A frame given to ``Splitter.assign_frame``: pandas as it is; a pyarrow Table, or a frame
    that exports an Arrow C stream (polars), as a pyarrow Table. :meth:`with_columns` gives
    back the kind that came in."""

    def __init__(self, df: Any, what: str) -> None:
        pd, pa = loaded("pandas"), loaded("pyarrow")
        self.original = df
        if pd is not None and isinstance(df, pd.DataFrame):
            self.kind, self.data = "pandas", df
            self.columns = [str(c) for c in df.columns]
        elif pa is not None and isinstance(df, pa.Table):
            self.kind, self.data, self.columns = "arrow", df, list(df.column_names)
        elif exports_arrow_stream(df):
            self.kind = "polars" if is_polars_frame(df) else "arrow"
            self.data = arrow_table(df, what)
            self.columns = list(self.data.column_names)
        else:
            raise ConfigError(
                f"{what} expects a pandas or polars DataFrame or a pyarrow Table, "
                f"got {type(df).__name__}"
            )
        self.rows = len(self.data) if self.kind == "pandas" else self.data.num_rows

    def column(self, name: str) -> Any:
        """A pandas Series or a pyarrow ChunkedArray."""
        return self.data[name] if self.kind == "pandas" else self.data.column(name)

    def with_columns(self, columns: Mapping[str, tuple[np.ndarray, Sequence[str]]]) -> Any:
        """A copy of the frame with categorical columns added (or replaced), each given as
        codes (-1: missing) and categories: pandas ``Categorical``, Arrow dictionary arrays,
        polars ``Enum``."""
        if self.kind == "pandas":
            pd = loaded("pandas")
            out = self.original.copy()
            for name, (codes, categories) in columns.items():
                out[name] = pd.Categorical.from_codes(
                    codes.astype(np.int64), categories=list(categories)
                )
            return out
        pa = loaded("pyarrow")
        arrays = {
            name: pa.DictionaryArray.from_arrays(
                pa.array(codes.astype(np.int32), mask=codes < 0), pa.array(list(categories))
            )
            for name, (codes, categories) in columns.items()
        }
        if self.kind == "polars":
            pl = loaded("polars")
            return self.original.with_columns(
                [
                    pl.from_arrow(arr).cast(pl.Enum(list(columns[name][1]))).alias(name)
                    for name, arr in arrays.items()
                ]
            )
        table = self.data
        for name, arr in arrays.items():
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, arr)
            else:
                table = table.append_column(name, arr)
        return table


def object_values(units: Any) -> np.ndarray:
    """A column of unit ids (pandas Series or pyarrow ChunkedArray) as an object array."""
    if is_pandas(units):
        return units.to_numpy(dtype=object)
    out = np.empty(len(units), dtype=object)
    out[:] = units.to_pylist()
    return out


def arrow_override_rows(units: Any, overrides: Mapping[str, str]) -> list[tuple[int, str]]:
    """(row, unit key) of the rows of an Arrow column of unit ids whose key has an override.
    The override keys are turned into values of the column's type (canonical decimal text
    into integers, ``b:<hex>`` into bytes) and found by ``is_in``: the cost is one pass over
    the column, with no Python object per row, however many distinct ids it holds."""
    from ._shared.keys import unit_key_or_none

    pa = loaded("pyarrow")
    pc = require("pyarrow.compute", what="Splitter.assign_frame")
    units = without_views(units)
    if pa.types.is_dictionary(units.type):
        units = pa.chunked_array(
            [chunk.dictionary_decode() for chunk in units.chunks], units.type.value_type
        )
    typ = units.type
    values: list[Any] = []
    if pa.types.is_integer(typ):
        info = np.iinfo(typ.to_pandas_dtype())
        for k in overrides:
            with contextlib.suppress(ValueError):
                if str(int(k)) == k and info.min <= int(k) <= info.max:
                    values.append(int(k))
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        values = list(overrides)
    elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        for k in overrides:
            with contextlib.suppress(ValueError):
                if k.startswith("b:"):
                    values.append(bytes.fromhex(k[2:]))
    else:  # a type no override key can name in bulk: key every row
        keys = [unit_key_or_none(v) for v in units.to_pylist()]
        return [(i, k) for i, k in enumerate(keys) if k is not None and k in overrides]
    if not values:
        return []
    found = pc.is_in(units, value_set=pa.array(values, typ))
    rows = np.flatnonzero(found.to_numpy(zero_copy_only=False))
    keys = [unit_key_or_none(v) for v in units.take(pa.array(rows)).to_pylist()]
    return [
        (int(i), k) for i, k in zip(rows, keys, strict=True) if k is not None and k in overrides
    ]


def without_views(values: Any) -> Any:
    """An Arrow array or ChunkedArray with ``string_view``/``binary_view`` (what polars
    exports) as ``large_string``/``large_binary``, dictionaries included: pyarrow's take,
    unique and is_in kernels lack the view types. Other columns are returned as they are."""
    pa = loaded("pyarrow")
    views = {"string_view": pa.large_string(), "binary_view": pa.large_binary()}
    typ = values.type
    if not pa.types.is_dictionary(typ):
        plain = views.get(str(typ))
        return values if plain is None else values.cast(plain)
    plain = views.get(str(typ.value_type))
    if plain is None:
        return values

    def decoded_values(chunk: Any) -> Any:
        return pa.DictionaryArray.from_arrays(chunk.indices, chunk.dictionary.cast(plain))

    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array(
            [decoded_values(c) for c in values.chunks], pa.dictionary(typ.index_type, plain)
        )
    return decoded_values(values)


def masked_parts(array: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The values and the missing mask of a pandas masked array (nullable ``Int64``,
    ``Float64``, ``boolean``), or None for any other array.

    pandas gives no public zero-copy view of them: its masked arrays keep them as the ``_data``
    and ``_mask`` attributes of ``BaseMaskedArray``, read here and nowhere else, and checked to
    be numpy arrays of one length; a pandas without them gets the public, copying accessors."""
    pd = loaded("pandas")
    masked = getattr(getattr(pd, "arrays", None), "BaseMaskedArray", None) if pd else None
    base = getattr(getattr(pd, "core", None), "arrays", None) if pd else None
    if masked is None and base is not None:
        masked = getattr(getattr(base, "masked", None), "BaseMaskedArray", None)
    if masked is None or not isinstance(array, masked):
        return None
    data, mask = getattr(array, "_data", None), getattr(array, "_mask", None)
    if (
        isinstance(data, np.ndarray)
        and isinstance(mask, np.ndarray)
        and data.shape == mask.shape == (len(array),)
    ):
        return data, mask
    numpy_dtype = array.dtype.numpy_dtype
    return (
        array.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0)),
        np.asarray(array.isna(), dtype=bool),
    )
