"""DataFrames and columns of libraries other than pandas, read through the Arrow PyCapsule
interface (``__arrow_c_stream__``): polars, and anything else that exports Arrow streams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._optional import loaded, require


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


def arrow_table(obj: Any, what: str) -> Any:
    """A pyarrow Table of a frame exporting an Arrow C stream; no copy of the buffers."""
    pa = require("pyarrow", what=what)
    return pa.table(obj)


def arrow_column(obj: Any, what: str) -> Any:
    """A pyarrow ChunkedArray of a column exporting an Arrow C stream (a polars Series)."""
    pa = require("pyarrow", what=what)
    return pa.chunked_array(obj)


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
