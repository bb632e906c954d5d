"""trafficsplit._core.parquet: Parquet data-page bodies of backfill output. Each function
encodes one page into ``out`` and returns its size, or minus the size ``out`` must have when it
is too small (nothing is written then). Buffers are pyarrow Buffers or anything else with the
buffer protocol."""

import numpy as np
import numpy.typing as npt

def binary_page(
    offsets: object,
    data: object,
    validity: object | None,
    validity_offset: int,
    first: int,
    count: int,
    large: bool,
    optional: bool,
    out: npt.NDArray[np.uint8],
) -> int: ...
def fixed_page(
    values: object,
    width: int,
    validity: object | None,
    validity_offset: int,
    first: int,
    count: int,
    optional: bool,
    out: npt.NDArray[np.uint8],
) -> int: ...
def nonnegative_page(values: npt.NDArray[np.int32], out: npt.NDArray[np.uint8]) -> int: ...
def arm_indices_page(
    values: npt.NDArray[np.int16], bit_width: int, out: npt.NDArray[np.uint8]
) -> int: ...
def code_indices_page(
    values: npt.NDArray[np.uint8], bit_width: int, out: npt.NDArray[np.uint8]
) -> int: ...
def index_bit_width(dictionary_size: int) -> int: ...
