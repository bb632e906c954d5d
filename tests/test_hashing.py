"""The hash contract (docs/assignment-spec.md §1-3) against the reference implementations.

Every expected hash comes from the golden vectors in tests/data/hash_vectors.tsv (written by
tests/data/make_hash_vectors.py with the PyPI packages ``xxhash`` and ``mmh3``) or is computed
here with those same packages; none is copied from trafficsplit's own output.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mmh3
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts

DATA = Path(__file__).parent / "data"
VECTORS = DATA / "hash_vectors.tsv"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
ALGORITHMS = ("xxh3", "murmur3")
BUCKET_COUNTS = (1, 2, 3, 7, 100, 10_000, 999_983, 1_000_000, 2**32 - 1, 2**32 + 15)


# -- reference implementations ----------------------------------------------------------------


def ref_hash(algorithm: str, data: bytes, salt: str) -> int:
    """hash64 straight from the PyPI reference packages."""
    salt_bytes = salt.encode("utf-8")
    if algorithm == "xxh3":
        return xxhash.xxh3_64_intdigest(data, seed=xxhash.xxh3_64_intdigest(salt_bytes))
    assert algorithm == "murmur3"
    return mmh3.hash(data, mmh3.hash(salt_bytes, 0, signed=False), signed=False)


def unit_bytes(unit: str | int | bytes) -> bytes:
    """The contract's unit -> bytes rule, written out independently of trafficsplit."""
    if isinstance(unit, str):
        return unit.encode("utf-8")
    if isinstance(unit, bytes):
        return unit
    assert isinstance(unit, int | np.integer) and not isinstance(unit, bool)
    return str(int(unit)).encode("ascii")


# -- the golden vectors -----------------------------------------------------------------------


@dataclass(frozen=True)
class Vector:
    line: int
    algorithm: str
    salt: str
    unit_type: str  # "str", "bytes" or "int"
    data: bytes  # the bytes hashed
    expected: int

    @property
    def value(self) -> str | bytes | int:
        """The unit as a Python object of its type."""
        if self.unit_type == "str":
            return self.data.decode("utf-8")
        if self.unit_type == "int":
            return int(self.data.decode("ascii"))
        return self.data

    @property
    def id(self) -> str:
        return f"{self.algorithm}-L{self.line}-{self.unit_type}"


def _decode_unit(unit_type: str, column: str) -> bytes:
    if unit_type == "int":
        int(column)  # must be a decimal integer
        return column.encode("ascii")
    if column.startswith("repeat:"):
        _, hex_part, count = column.split(":")
        return bytes.fromhex(hex_part) * int(count)
    return bytes.fromhex(column)


def load_vectors() -> list[Vector]:
    vectors = []
    header_seen = False
    with VECTORS.open(encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\n")
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            assert len(fields) == 5, f"line {lineno}: {len(fields)} fields"
            if not header_seen:
                assert fields == ["algorithm", "salt_hex", "unit_type", "unit", "hash64"]
                header_seen = True
                continue
            algorithm, salt_hex, unit_type, unit, h = fields
            assert algorithm in ALGORITHMS, f"line {lineno}"
            assert unit_type in ("str", "bytes", "int"), f"line {lineno}"
            vectors.append(
                Vector(
                    lineno,
                    algorithm,
                    bytes.fromhex(salt_hex).decode("utf-8"),
                    unit_type,
                    _decode_unit(unit_type, unit),
                    int(h),
                )
            )
    return vectors


VECTOR_LIST = load_vectors()


def _groups() -> dict[tuple[str, str], list[Vector]]:
    groups: dict[tuple[str, str], list[Vector]] = {}
    for v in VECTOR_LIST:
        groups.setdefault((v.algorithm, v.salt), []).append(v)
    return groups


GROUPS = _groups()


def _salt_label(salt: str) -> str:
    return repr(salt if len(salt) <= 20 else salt[:17] + "...")


def test_vector_file_shape() -> None:
    assert 150 <= len(VECTOR_LIST) <= 300
    salts = {v.salt for v in VECTOR_LIST}
    assert "" in salts
    assert "ranker-v2/arm" in salts
    assert any(not s.isascii() for s in salts)
    for algorithm in ALGORITHMS:
        rows = [v for v in VECTOR_LIST if v.algorithm == algorithm]
        assert {v.unit_type for v in rows} == {"str", "bytes", "int"}
        assert any(len(v.data) == 1 << 20 for v in rows)  # a 1 MiB id
        assert any(v.unit_type == "str" and v.data == b"" for v in rows)
        ints = {int(v.data) for v in rows if v.unit_type == "int"}
        assert {0, 1, -1, 123, INT64_MIN, INT64_MAX, UINT64_MAX, 2**64, INT64_MIN - 1} <= ints
        byte_rows = [v.data for v in rows if v.unit_type == "bytes"]
        assert any(b"\x00" in b for b in byte_rows) and any(b"\xff" in b for b in byte_rows)
        assert all(v.expected < 2**32 for v in rows if algorithm == "murmur3")


def test_vector_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_hash_vectors", DATA / "make_hash_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.self_check()
    assert module.render() == VECTORS.read_text(encoding="utf-8")


@pytest.mark.parametrize("v", VECTOR_LIST, ids=lambda v: v.id)
def test_vector_agrees_with_reference_packages(v: Vector) -> None:
    # The file itself, recomputed: guards against a hand-edited row.
    assert ref_hash(v.algorithm, v.data, v.salt) == v.expected


def _scalar_forms(v: Vector) -> Iterator[Any]:
    """Every scalar spelling of the row's unit that the contract maps to the same bytes."""
    value = v.value
    yield value
    if v.unit_type == "str":
        yield v.data  # the raw UTF-8 bytes hash alike
        return
    if v.unit_type == "bytes":
        return
    assert isinstance(value, int)
    yield str(value)
    yield str(value).encode("ascii")
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        info = np.iinfo(dtype)
        if info.min <= value <= info.max:
            yield dtype(value)


@pytest.mark.parametrize("v", VECTOR_LIST, ids=lambda v: v.id)
def test_hash64_and_bucket_match_vector(v: Vector) -> None:
    for unit in _scalar_forms(v):
        got = ts.hash64(unit, v.salt, v.algorithm)
        assert type(got) is int
        assert got == v.expected, f"{type(unit).__name__} spelling of line {v.line}"
        for buckets in BUCKET_COUNTS:
            assert ts.bucket(unit, v.salt, buckets, v.algorithm) == v.expected % buckets
    if v.algorithm == "xxh3":  # the default algorithm
        assert ts.hash64(v.value, v.salt) == v.expected
        assert ts.bucket(v.value, v.salt) == v.expected % 10_000
        assert ts.bucket(v.value, v.salt, buckets=np.int64(97)) == v.expected % 97


def test_vectors_keep_nfc_and_nfd_apart() -> None:
    pairs = 0
    for v in VECTOR_LIST:
        if v.unit_type != "str":
            continue
        text = v.data.decode("utf-8")
        nfd = unicodedata.normalize("NFD", text)
        if nfd == text:
            continue
        twin = [
            w
            for w in GROUPS[(v.algorithm, v.salt)]
            if w.unit_type == "str" and w.data == nfd.encode("utf-8")
        ]
        if twin:
            pairs += 1
            assert twin[0].expected != v.expected
            assert ts.hash64(text, v.salt, v.algorithm) != ts.hash64(nfd, v.salt, v.algorithm)
    assert pairs >= 6


def test_integer_and_decimal_text_are_one_unit() -> None:
    for v in VECTOR_LIST:
        if v.unit_type == "int":
            text = v.data.decode("ascii")
            assert ts.hash64(int(text), v.salt, v.algorithm) == v.expected
            assert ts.hash64(text, v.salt, v.algorithm) == v.expected


# -- hash64_batch over every input form ------------------------------------------------------

# Longest id put in numpy fixed-width arrays (every element takes the width of the longest).
FIXED_WIDTH_LIMIT = 4096

Expected = list[int | None]  # None: the row is missing (masked)
Builder = Callable[[list[Vector]], tuple[Any, Expected]]


def _exp(rows: list[Vector]) -> Expected:
    return [v.expected for v in rows]


def _is_str(v: Vector) -> bool:
    return v.unit_type == "str"


def _is_bytes(v: Vector) -> bool:
    return v.unit_type == "bytes"


def _is_int(v: Vector) -> bool:
    return v.unit_type == "int"


def _fits(dtype: Any) -> Callable[[Vector], bool]:
    info = np.iinfo(dtype)
    return lambda v: _is_int(v) and info.min <= int(v.data) <= info.max


def _fixed_width_ok(v: Vector) -> bool:
    # numpy U/S arrays drop trailing NULs (documented in the spec), so such ids are left out.
    return len(v.data) <= FIXED_WIDTH_LIMIT and not v.data.endswith(b"\x00")


def _with_missing(
    units: list[Any], expected: Expected, missing: list[Any]
) -> tuple[list, Expected]:
    """Interleaves missing markers: one before the first row and one after every third row."""
    out_u: list[Any] = [missing[0]]
    out_e: Expected = [None]
    for i, (u, e) in enumerate(zip(units, expected, strict=True)):
        out_u.append(u)
        out_e.append(e)
        if i % 3 == 1:
            out_u.append(missing[i % len(missing)])
            out_e.append(None)
    return out_u, out_e


class ArrowCArrayOnly:
    """An object that offers only the Arrow PyCapsule interface (e.g. a polars Series)."""

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self._array.__arrow_c_array__(requested_schema)


def _arrow(typ: Any, rows: list[Vector]) -> pa.Array:
    if pa.types.is_integer(typ):
        return pa.array([int(v.data) for v in rows], typ)
    if typ in _TEXT_ARROW:
        return pa.array([v.data.decode("utf-8") for v in rows], typ)
    return pa.array([v.data for v in rows], typ)


def _arrow_sliced_with_nulls(typ: Any, rows: list[Vector]) -> tuple[Any, Expected]:
    """An Arrow array with nulls and a non-zero offset (validity bits read at an offset)."""
    filler = 7 if pa.types.is_integer(typ) else "x" if typ in _TEXT_ARROW else b"x"
    plain = _arrow(typ, rows).to_pylist()
    units, expected = _with_missing(plain, _exp(rows), [None])
    arr = pa.array([filler, filler, filler, *units, filler], typ).slice(3, len(units))
    return arr, expected


def _plain(select: Callable[[Vector], bool], make: Callable[[list[Vector]], Any]) -> tuple:
    return select, lambda rows: (make(rows), _exp(rows))


_TEXT_ARROW = (pa.string(), pa.large_string(), pa.string_view())
_BINARY_ARROW = (pa.binary(), pa.large_binary(), pa.binary_view())
_INT_ARROW = (
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
)
_NP_INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


def _any(v: Vector) -> bool:
    return True


def _list_with_missing(rows: list[Vector]) -> tuple[Any, Expected]:
    return _with_missing(
        [v.value for v in rows], _exp(rows), [None, float("nan"), pd.NA, np.float64("nan"), pd.NaT]
    )


def _str_series(dtype: Any) -> Callable[[list[Vector]], tuple[Any, Expected]]:
    def build(rows: list[Vector]) -> tuple[Any, Expected]:
        units, expected = _with_missing([v.value for v in rows], _exp(rows), [None])
        return pd.Series(units, dtype=dtype), expected

    return build


def _nullable_int_series(dtype: str, rows: list[Vector]) -> tuple[Any, Expected]:
    units, expected = _with_missing([int(v.data) for v in rows], _exp(rows), [pd.NA])
    return pd.Series(units, dtype=dtype), expected


def _categorical(rows: list[Vector]) -> tuple[Any, Expected]:
    units, expected = _with_missing([v.value for v in rows] * 2, _exp(rows) * 2, [None])
    return pd.Series(units, dtype="category"), expected


def _dictionary(typ: Any) -> Callable[[list[Vector]], tuple[Any, Expected]]:
    def build(rows: list[Vector]) -> tuple[Any, Expected]:
        plain = _arrow(typ, rows).to_pylist()
        units, expected = _with_missing(plain[::-1] + plain, _exp(rows)[::-1] + _exp(rows), [None])
        return pa.array(units, typ).dictionary_encode(), expected

    return build


def _chunked(typ: Any) -> Callable[[list[Vector]], tuple[Any, Expected]]:
    def build(rows: list[Vector]) -> tuple[Any, Expected]:
        arr = _arrow(typ, rows)
        k = len(arr) // 2
        return pa.chunked_array([arr.slice(0, k), arr.slice(k), arr.slice(0, 0)], typ), _exp(rows)

    return build


FORMS: dict[str, tuple[Callable[[Vector], bool], Builder]] = {
    "list": _plain(_any, lambda rows: [v.value for v in rows]),
    "tuple": _plain(_any, lambda rows: tuple(v.value for v in rows)),
    "generator": _plain(_any, lambda rows: (v.value for v in rows)),
    "list-str-as-bytes": _plain(_is_str, lambda rows: [v.data for v in rows]),
    "list-int-as-numpy-scalars": _plain(
        _fits(np.int64), lambda rows: [np.int64(int(v.data)) for v in rows]
    ),
    "list-with-missing": (_any, _list_with_missing),
    "numpy-object": _plain(
        _any, lambda rows: np.array([v.value for v in rows] + [None], dtype=object)[:-1]
    ),
    "numpy-U": _plain(
        lambda v: _is_str(v) and _fixed_width_ok(v),
        lambda rows: np.array([v.value for v in rows], dtype=str),
    ),
    "numpy-S": _plain(
        lambda v: not _is_int(v) and _fixed_width_ok(v),
        lambda rows: np.array([v.data for v in rows], dtype=bytes),
    ),
    "numpy-StringDType": _plain(
        _is_str, lambda rows: np.array([v.value for v in rows], dtype=np.dtypes.StringDType())
    ),
    **{
        f"numpy-{np.dtype(t).name}": _plain(
            _fits(t), lambda rows, t=t: np.array([int(v.data) for v in rows], dtype=t)
        )
        for t in _NP_INTS
    },
    "numpy-int64-strided": _plain(
        _fits(np.int64),
        lambda rows: np.array([x for v in rows for x in (int(v.data), 0)], np.int64)[::2],
    ),
    "pandas-object": _plain(_any, lambda rows: pd.Series([v.value for v in rows], dtype=object)),
    "pandas-str-default": (_is_str, _str_series(None)),
    "pandas-string-python": (_is_str, _str_series(pd.StringDtype("python"))),
    "pandas-string-pyarrow": (_is_str, _str_series(pd.StringDtype("pyarrow"))),
    "pandas-arrow-string": (_is_str, _str_series(pd.ArrowDtype(pa.string()))),
    "pandas-arrow-binary": (_is_bytes, _str_series(pd.ArrowDtype(pa.binary()))),
    "pandas-categorical": (lambda v: not _is_int(v), _categorical),
    "pandas-string-pyarrow-sliced": _plain(
        _is_str,
        lambda rows: pd.Series(
            ["x"] + [v.value for v in rows], dtype=pd.StringDtype("pyarrow")
        ).iloc[1:],
    ),
    "pandas-categorical-int": _plain(
        _fits(np.int64), lambda rows: pd.Series([int(v.data) for v in rows], dtype="category")
    ),
    "numpy-U-reversed": (
        lambda v: _is_str(v) and _fixed_width_ok(v),
        lambda rows: (np.array([v.value for v in rows], dtype=str)[::-1], _exp(rows)[::-1]),
    ),
    "pandas-index": _plain(_is_str, lambda rows: pd.Index([v.value for v in rows], dtype=object)),
    "pandas-int64": _plain(
        _fits(np.int64), lambda rows: pd.Series([int(v.data) for v in rows], dtype="int64")
    ),
    "pandas-uint64": _plain(
        _fits(np.uint64), lambda rows: pd.Series([int(v.data) for v in rows], dtype="uint64")
    ),
    "pandas-Int64": (_fits(np.int64), lambda rows: _nullable_int_series("Int64", rows)),
    "pandas-UInt64": (_fits(np.uint64), lambda rows: _nullable_int_series("UInt64", rows)),
    "pandas-Int8": (_fits(np.int8), lambda rows: _nullable_int_series("Int8", rows)),
    "pandas-arrow-int64": (
        _fits(np.int64),
        lambda rows: _nullable_int_series("int64[pyarrow]", rows),
    ),
    **{f"arrow-{t}": _plain(_is_str, lambda rows, t=t: _arrow(t, rows)) for t in _TEXT_ARROW},
    **{
        f"arrow-{t}": _plain(lambda v: not _is_int(v), lambda rows, t=t: _arrow(t, rows))
        for t in _BINARY_ARROW
    },
    **{
        f"arrow-{t}": _plain(_fits(t.to_pandas_dtype()), lambda rows, t=t: _arrow(t, rows))
        for t in _INT_ARROW
    },
    **{
        f"arrow-{t}-sliced-nulls": (_is_str, lambda rows, t=t: _arrow_sliced_with_nulls(t, rows))
        for t in _TEXT_ARROW
    },
    "arrow-binary-sliced-nulls": (
        _is_bytes,
        lambda rows: _arrow_sliced_with_nulls(pa.binary(), rows),
    ),
    "arrow-int64-sliced-nulls": (
        _fits(np.int64),
        lambda rows: _arrow_sliced_with_nulls(pa.int64(), rows),
    ),
    "arrow-uint64-sliced-nulls": (
        _fits(np.uint64),
        lambda rows: _arrow_sliced_with_nulls(pa.uint64(), rows),
    ),
    "arrow-chunked-string": (_is_str, _chunked(pa.string())),
    "arrow-chunked-int64": (_fits(np.int64), _chunked(pa.int64())),
    "arrow-dictionary-string": (_is_str, _dictionary(pa.string())),
    "arrow-dictionary-int64": (_fits(np.int64), _dictionary(pa.int64())),
    "arrow-c-interface-only": _plain(
        _is_str, lambda rows: ArrowCArrayOnly(_arrow(pa.string(), rows))
    ),
}


def _batch_cases() -> list[Any]:
    cases = []
    for (algorithm, salt), rows in GROUPS.items():
        for name, (select, _) in FORMS.items():
            if any(select(v) for v in rows):
                cases.append(
                    pytest.param(
                        algorithm, salt, name, id=f"{algorithm}-{_salt_label(salt)}-{name}"
                    )
                )
    return cases


def assert_batch(result: Any, expected: Expected) -> None:
    assert isinstance(result, np.ma.MaskedArray)
    assert result.dtype == np.uint64
    assert result.shape == (len(expected),)
    mask = np.ma.getmaskarray(result)
    assert mask.tolist() == [e is None for e in expected]
    got = [None if m else int(x) for x, m in zip(result.data.tolist(), mask.tolist(), strict=True)]
    assert got == expected


@pytest.mark.parametrize(("algorithm", "salt", "form"), _batch_cases())
def test_hash64_batch_matches_vectors(algorithm: str, salt: str, form: str) -> None:
    select, build = FORMS[form]
    rows = [v for v in GROUPS[(algorithm, salt)] if select(v)]
    units, expected = build(rows)
    assert_batch(ts.hash64_batch(units, salt, algorithm), expected)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash64_batch_mixed_types_in_one_list(algorithm: str) -> None:
    rows = [v for v in VECTOR_LIST if v.algorithm == algorithm]
    for salt in {v.salt for v in rows}:
        group = [v for v in rows if v.salt == salt]
        units, expected = _list_with_missing(group)
        assert_batch(ts.hash64_batch(units, salt, algorithm), expected)
        assert_batch(ts.hash64_batch(units, salt, algorithm, threads=1), expected)


def test_hash64_batch_of_nothing() -> None:
    for units in (
        [],
        (),
        np.array([], np.int64),
        np.array([], dtype=object),
        pd.Series([]),
        pa.array([], pa.string()),
        pa.chunked_array([], pa.string()),
    ):
        assert_batch(ts.hash64_batch(units, "s"), [])


def test_hash64_batch_all_missing() -> None:
    assert_batch(ts.hash64_batch([None, float("nan"), pd.NA], "s"), [None, None, None])
    assert_batch(ts.hash64_batch(pa.nulls(3), "s"), [None, None, None])
    assert_batch(ts.hash64_batch(pd.Series([pd.NA] * 2, dtype="Int64"), "s"), [None, None])
    assert_batch(
        ts.hash64_batch(pa.array([None, None], pa.string()).dictionary_encode(), "s"), [None, None]
    )


# -- random inputs against the reference packages --------------------------------------------

SEED = 20_240_611

# Code point ranges, weighted towards what unit ids look like; no surrogates (D800-DFFF).
_RANGES = [
    (0x20, 0x7E, 40),
    (0x00, 0x1F, 2),
    (0xA0, 0x24F, 8),
    (0x300, 0x36F, 4),
    (0x370, 0x52F, 4),
    (0x590, 0x6FF, 3),
    (0x900, 0x97F, 2),
    (0x1100, 0x11FF, 2),
    (0x3040, 0x30FF, 4),
    (0x4E00, 0x9FFF, 6),
    (0xAC00, 0xD7A3, 3),
    (0xE000, 0xF8FF, 1),
    (0xFE00, 0xFE0F, 1),
    (0xFFF0, 0xFFFF, 1),
    (0x1F1E6, 0x1F1FF, 1),
    (0x1F300, 0x1FAFF, 6),
    (0x1F3FB, 0x1F3FF, 2),
    (0x200D, 0x200D, 2),
    (0x10000, 0x10FFFF, 2),
]


def random_text(rng: random.Random) -> str:
    n = rng.choice([0, 1, 2, 3, 4, 5, 8, 12, 16, 20, 32, 40, 100, 300])
    lows, highs, weights = zip(*_RANGES, strict=True)
    picks = rng.choices(range(len(_RANGES)), weights=weights, k=n)
    return "".join(chr(rng.randint(lows[i], highs[i])) for i in picks)


def random_int(rng: random.Random) -> int:
    kind = rng.random()
    if kind < 0.6:
        return rng.randint(INT64_MIN, INT64_MAX)
    if kind < 0.8:
        return rng.randint(-(10 ** rng.randint(1, 18)), 10 ** rng.randint(1, 18))
    if kind < 0.9:
        return rng.randint(INT64_MAX + 1, UINT64_MAX)
    return rng.randint(-(2**200), 2**200)


def random_salts(rng: random.Random) -> list[str]:
    return ["", "ranker-v2/arm", "exp#3/traffic", *(random_text(rng) for _ in range(5))]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_random_text_matches_reference(algorithm: str) -> None:
    rng = random.Random(SEED)
    for salt in random_salts(rng):
        texts = [random_text(rng) for _ in range(400)]
        expected = [ref_hash(algorithm, t.encode("utf-8"), salt) for t in texts]
        for t, e in zip(texts, expected, strict=True):
            assert ts.hash64(t, salt, algorithm) == e, (t, salt)
        assert_batch(ts.hash64_batch(texts, salt, algorithm), expected)
        assert_batch(ts.hash64_batch(pa.array(texts, pa.string_view()), salt, algorithm), expected)
        fixed = [i for i, t in enumerate(texts) if not t.endswith("\x00")]
        assert_batch(
            ts.hash64_batch(np.array([texts[i] for i in fixed]), salt, algorithm),
            [expected[i] for i in fixed],
        )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_random_ints_match_reference(algorithm: str) -> None:
    rng = random.Random(SEED + 1)
    for salt in random_salts(rng):
        ints = [random_int(rng) for _ in range(500)]
        expected = [ref_hash(algorithm, str(i).encode("ascii"), salt) for i in ints]
        for i, e in zip(ints, expected, strict=True):
            assert ts.hash64(i, salt, algorithm) == e, (i, salt)
        assert_batch(ts.hash64_batch(ints, salt, algorithm), expected)
        small = [k for k, i in enumerate(ints) if INT64_MIN <= i <= INT64_MAX]
        arr = np.array([ints[k] for k in small], np.int64)
        assert_batch(ts.hash64_batch(arr, salt, algorithm), [expected[k] for k in small])
        assert_batch(ts.hash64_batch(pa.array(arr), salt, algorithm), [expected[k] for k in small])
        unsigned = [k for k, i in enumerate(ints) if 0 <= i <= UINT64_MAX]
        arr = np.array([ints[k] for k in unsigned], np.uint64)
        assert_batch(ts.hash64_batch(arr, salt, algorithm), [expected[k] for k in unsigned])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_random_bytes_match_reference(algorithm: str) -> None:
    rng = random.Random(SEED + 2)
    for salt in random_salts(rng):
        blobs = [
            rng.randbytes(rng.choice([0, 1, 3, 4, 7, 16, 17, 64, 129, 241, 1500]))
            for _ in range(300)
        ]
        expected = [ref_hash(algorithm, b, salt) for b in blobs]
        for b, e in zip(blobs, expected, strict=True):
            assert ts.hash64(b, salt, algorithm) == e
        assert_batch(ts.hash64_batch(blobs, salt, algorithm), expected)
        assert_batch(ts.hash64_batch(pa.array(blobs, pa.large_binary()), salt, algorithm), expected)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_large_batch_is_the_same_on_any_thread_count(algorithm: str) -> None:
    # 200k rows: enough for the kernel to split the work over several threads.
    rng = np.random.default_rng(SEED)
    values = rng.integers(INT64_MIN, INT64_MAX, size=200_000, dtype=np.int64, endpoint=True)
    salt = "ranker-v2/arm"
    expected = [ref_hash(algorithm, str(x).encode("ascii"), salt) for x in values.tolist()]
    for threads in (None, 1, 2, 3, 8):
        assert_batch(ts.hash64_batch(values, salt, algorithm, threads=threads), expected)
    texts = [f"user-{x}" for x in values[:150_000].tolist()]
    expected = [ref_hash(algorithm, t.encode("ascii"), salt) for t in texts]
    assert_batch(ts.hash64_batch(pa.array(texts), salt, algorithm, threads=4), expected)
    assert_batch(ts.hash64_batch(texts, salt, algorithm, threads=4), expected)


@settings(max_examples=300, deadline=None)
@given(unit=st.text(), salt=st.text(max_size=30), algorithm=st.sampled_from(ALGORITHMS))
def test_hypothesis_text(unit: str, salt: str, algorithm: str) -> None:
    expected = ref_hash(algorithm, unit.encode("utf-8"), salt)
    assert ts.hash64(unit, salt, algorithm) == expected
    assert ts.hash64(unit.encode("utf-8"), salt, algorithm) == expected
    assert ts.bucket(unit, salt, 10_000, algorithm) == expected % 10_000


@settings(max_examples=300, deadline=None)
@given(
    unit=st.integers(min_value=-(2**80), max_value=2**80),
    salt=st.text(max_size=30),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_hypothesis_int(unit: int, salt: str, algorithm: str) -> None:
    expected = ref_hash(algorithm, str(unit).encode("ascii"), salt)
    assert ts.hash64(unit, salt, algorithm) == expected
    assert ts.hash64(str(unit), salt, algorithm) == expected


@settings(max_examples=300, deadline=None)
@given(
    unit=st.binary(max_size=300), salt=st.text(max_size=30), algorithm=st.sampled_from(ALGORITHMS)
)
def test_hypothesis_bytes(unit: bytes, salt: str, algorithm: str) -> None:
    expected = ref_hash(algorithm, unit, salt)
    assert ts.hash64(unit, salt, algorithm) == expected
    assert_batch(ts.hash64_batch([unit], salt, algorithm), [expected])


# -- type rules -------------------------------------------------------------------------------


def _refused(type_name: str, shown: str, where: str = "unit id") -> str:
    return (
        f"{where} has type '{type_name}' ({shown}); unit ids must be str, int or bytes. "
        "Floats and bools are refused so that 1.0 and True never silently become the "
        'unit "1"'
    )


_OBJ = object()
REFUSED: list[tuple[Any, str]] = [
    (1.5, "float"),
    (1.0, "float"),
    (float("inf"), "float"),
    (True, "bool"),
    (False, "bool"),
    (_OBJ, "object"),
    (dt.datetime(2024, 1, 2, 3, 4, 5), "datetime.datetime"),
    (dt.date(2024, 1, 2), "datetime.date"),
    (1 + 2j, "complex"),
    (np.float64(1.5), "numpy.float64"),
    (np.float32(2.0), "numpy.float32"),
    (np.bool_(True), "numpy.bool"),
    (bytearray(b"x"), "bytearray"),
    ([1], "list"),
]


@pytest.mark.parametrize(("unit", "type_name"), REFUSED, ids=lambda x: repr(x)[:30])
def test_refused_types_name_the_type(unit: Any, type_name: str) -> None:
    message = _refused(type_name, repr(unit))
    for call in (
        lambda: ts.hash64(unit, "s"),
        lambda: ts.bucket(unit, "s"),
        lambda: ts.hash64(unit, "s", "murmur3"),
    ):
        with pytest.raises(ts.UnitTypeError) as info:
            call()
        assert str(info.value) == message
        assert info.value.row == 0
    with pytest.raises(ts.UnitTypeError) as info:
        ts.hash64_batch(["a", None, unit], "s")
    assert str(info.value) == _refused(type_name, repr(unit), where="unit id at row 2")
    assert info.value.row == 2
    with pytest.raises(ts.UnitTypeError) as info:
        ts.Experiment("e", {"a": 100}).assign(unit)
    assert str(info.value) == message


def test_unit_type_error_is_a_type_error_and_a_trafficsplit_error() -> None:
    assert issubclass(ts.UnitTypeError, TypeError)
    assert issubclass(ts.UnitTypeError, ts.Error)
    with pytest.raises(TypeError):
        ts.hash64(1.5, "s")
    with pytest.raises(ts.Error):
        ts.hash64(True, "s")


MISSING: list[tuple[Any, str]] = [
    (None, "NoneType"),
    (float("nan"), "float"),
    (np.float64("nan"), "numpy.float64"),
    (np.float32("nan"), "numpy.float32"),
    (pd.NA, "NAType"),
    (pd.NaT, "NaTType"),
]


@pytest.mark.parametrize(("unit", "type_name"), MISSING, ids=lambda x: repr(x)[:30])
def test_missing_units(unit: Any, type_name: str) -> None:
    for algorithm in ALGORITHMS:
        with pytest.raises(ts.UnitTypeError) as info:
            ts.hash64(unit, "s", algorithm)
        assert str(info.value) == f"cannot hash a missing unit id ({type_name})"
        with pytest.raises(ts.UnitTypeError, match="cannot hash a missing unit id"):
            ts.bucket(unit, "s", 100, algorithm)
        # In a batch a missing unit is a masked row, not an error.
        assert_batch(
            ts.hash64_batch(["a", unit], "s", algorithm), [ref_hash(algorithm, b"a", "s"), None]
        )
    assert ts.Experiment("e", {"a": 100}).assign(unit).reason == "missing_unit"


LONE_SURROGATES = ["\ud800", "a\udfffb", "\ud83d\ude00", "user-\udc80"]
SURROGATE_MESSAGE = (
    "unit id is a str that cannot be encoded as UTF-8 (it contains a lone "
    "surrogate); pass bytes to hash it as given"
)


@pytest.mark.parametrize("unit", LONE_SURROGATES, ids=ascii)
def test_lone_surrogate_is_a_unit_value_error(unit: str) -> None:
    for algorithm in ALGORITHMS:
        with pytest.raises(ts.UnitValueError) as info:
            ts.hash64(unit, "s", algorithm)
        assert str(info.value) == SURROGATE_MESSAGE
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, ts.Error)
        assert not isinstance(info.value, TypeError)
    with pytest.raises(ts.UnitValueError) as info:
        ts.hash64_batch(["ok", "fine", unit], "s")
    assert info.value.row == 2
    assert str(info.value) == SURROGATE_MESSAGE.replace("unit id", "unit id at row 2", 1)
    with pytest.raises(ts.UnitValueError) as info:
        ts.hash64_batch(np.array(["ok", unit]), "s")
    assert info.value.row == 1
    assert str(info.value) == (
        "unit id cannot be encoded as UTF-8 (lone surrogate or invalid code point) at row 1"
    )
    # The advertised way out: the surrogatepass bytes hash as given.
    raw = unit.encode("utf-8", "surrogatepass")
    assert ts.hash64(raw, "s") == ref_hash("xxh3", raw, "s")


def test_unit_value_error_hierarchy() -> None:
    assert issubclass(ts.UnitValueError, ValueError)
    assert issubclass(ts.UnitValueError, ts.Error)
    assert issubclass(ts.ConfigError, ValueError)
    assert issubclass(ts.ConfigError, ts.Error)


def test_surrogate_pair_is_not_the_emoji() -> None:
    assert "\ud83d\ude00" != "😀"
    assert ts.hash64("😀", "s") == ref_hash("xxh3", "😀".encode(), "s")
    with pytest.raises(ts.UnitValueError):
        ts.hash64("\ud83d\ude00", "s")


def test_refused_containers_for_batch() -> None:
    with pytest.raises(ts.UnitTypeError, match="got a single str"):
        ts.hash64_batch("abc", "s")
    with pytest.raises(ts.UnitTypeError, match="got a single bytes"):
        ts.hash64_batch(b"abc", "s")
    with pytest.raises(ts.UnitTypeError, match="float64"):
        ts.hash64_batch(np.array([1.0, 2.0]), "s")
    with pytest.raises(ts.UnitTypeError, match="bool"):
        ts.hash64_batch(np.array([True]), "s")
    with pytest.raises(ts.UnitTypeError, match="float"):
        ts.hash64_batch(pd.Series([1.0, None]), "s")
    with pytest.raises(ts.UnitTypeError, match="double"):
        ts.hash64_batch(pa.array([1.5]), "s")
    with pytest.raises(ts.UnitTypeError, match="one-dimensional"):
        ts.hash64_batch(np.zeros((2, 2), np.int64), "s")


# -- argument errors --------------------------------------------------------------------------

ALGO_CALLS: list[Callable[[Any], Any]] = [
    lambda algorithm: ts.hash64("u", "s", algorithm),
    lambda algorithm: ts.bucket("u", "s", 100, algorithm),
    lambda algorithm: ts.hash64_batch(["u"], "s", algorithm),
]


@pytest.mark.parametrize("algorithm", ["XXH3", "md5", "", "murmur3_x86_32", None, 3, b"xxh3"])
def test_invalid_algorithm(algorithm: Any) -> None:
    for call in ALGO_CALLS:
        with pytest.raises(ts.ArgumentError) as info:
            call(algorithm)
        assert str(info.value) == f"algorithm must be one of ('xxh3', 'murmur3'), got {algorithm!r}"
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("salt", [b"s", None, 1, 1.5, ["s"]], ids=repr)
def test_invalid_salt_type(salt: Any) -> None:
    message = f"salt must be a str, got {type(salt).__name__}"
    for call in (
        lambda: ts.hash64("u", salt),
        lambda: ts.bucket("u", salt),
        lambda: ts.hash64_batch(["u"], salt),
    ):
        with pytest.raises(ts.ArgumentError) as info:
            call()
        assert str(info.value) == message


@pytest.mark.parametrize("buckets", [0, -1, 1.5, 10.0, True, "10", None, -(2**70)], ids=repr)
def test_invalid_buckets(buckets: Any) -> None:
    with pytest.raises(ts.ArgumentError) as info:
        ts.bucket("u", "s", buckets)
    assert str(info.value) == f"buckets must be an int >= 1, got {buckets!r}"
    assert isinstance(info.value, ValueError)


def test_salt_is_text_not_bytes_of_some_other_encoding() -> None:
    # The salt is hashed as UTF-8, including non-ASCII and very long salts.
    for salt in ("é", "e\u0301", "排序", "🧪" * 50, "x" * 10_000):
        for algorithm in ALGORITHMS:
            assert ts.hash64("u", salt, algorithm) == ref_hash(algorithm, b"u", salt)


# -- stage salts ------------------------------------------------------------------------------

STAGE_UNITS: list[Any] = [
    "user-42",
    "",
    "café",
    "cafe\u0301",
    "👨\u200d👩\u200d👧",
    0,
    -1,
    123,
    INT64_MIN,
    UINT64_MAX,
    2**64,
    b"\x00\xff",
    np.int64(7),
]


@pytest.mark.parametrize(
    ("kwargs", "salt"),
    [
        ({}, "ranker-v2"),
        ({"bucket_version": 1}, "ranker-v2"),
        ({"bucket_version": 2}, "ranker-v2#2"),
        ({"bucket_version": 10}, "ranker-v2#10"),
        ({"salt": "custom"}, "custom"),
        ({"salt": "custom", "bucket_version": 3}, "custom#3"),
        ({"salt": "Prüfung-排序"}, "Prüfung-排序"),
    ],
    ids=str,
)
def test_stage_salts(kwargs: dict[str, Any], salt: str) -> None:
    exp = ts.Experiment("ranker-v2", {"control": 50, "treatment": 50}, **kwargs)
    assert exp.arm_salt == f"{salt}/arm"
    assert exp.traffic_salt == f"{salt}/traffic"
    assert exp.salt == kwargs.get("salt", "ranker-v2")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("buckets", [10_000, 1, 7, 1000, 1_000_000])
@pytest.mark.parametrize("bucket_version", [1, 2])
def test_assign_bucket_is_the_arm_stage_bucket(
    algorithm: str, buckets: int, bucket_version: int
) -> None:
    exp = ts.Experiment(
        "ranker-v2",
        {"control": 50, "treatment": 50},
        1.0,
        None,
        buckets,
        algorithm,
        bucket_version=bucket_version,
    )
    arm_salt = "ranker-v2/arm" if bucket_version == 1 else f"ranker-v2#{bucket_version}/arm"
    assert exp.arm_salt == arm_salt
    units = STAGE_UNITS + [f"u{i}" for i in range(200)]
    for unit in units:
        expected = ref_hash(algorithm, unit_bytes(unit), arm_salt) % buckets
        assert exp.assign(unit).bucket == expected, unit
        assert ts.bucket(unit, exp.arm_salt, exp.buckets, exp.algorithm) == expected
    batch = exp.assign_batch(units)
    assert [int(b) for b in batch.bucket] == [
        ref_hash(algorithm, unit_bytes(u), arm_salt) % buckets for u in units
    ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_exposure_uses_the_traffic_stage_salt(algorithm: str) -> None:
    exp = ts.Experiment(
        "ranker-v2",
        {"control": 50, "treatment": 50},
        0.3,
        "custom",
        1000,
        algorithm,
        bucket_version=2,
    )
    assert exp.traffic_salt == "custom#2/traffic"
    threshold = exp.exposed_buckets()
    assert threshold == 300
    for i in range(500):
        unit = f"user-{i}"
        traffic = ref_hash(algorithm, unit.encode(), "custom#2/traffic") % 1000
        a = exp.assign(unit)
        assert a.bucket == ref_hash(algorithm, unit.encode(), "custom#2/arm") % 1000
        assert (a.reason == "assigned") == (traffic < threshold), unit
        assert a.reason in ("assigned", "not_exposed")


def test_custom_salt_replaces_the_key() -> None:
    a = ts.Experiment("key-a", {"x": 100}, salt="shared")
    b = ts.Experiment("key-b", {"x": 100}, salt="shared")
    c = ts.Experiment("key-a", {"x": 100})
    units = [f"u{i}" for i in range(300)]
    assert [a.assign(u).bucket for u in units] == [b.assign(u).bucket for u in units]
    assert [a.assign(u).bucket for u in units] != [c.assign(u).bucket for u in units]
    assert a.assign("u1").bucket == ref_hash("xxh3", b"u1", "shared/arm") % 10_000


# -- byte order, int subclasses, limits ------------------------------------------------------


@pytest.mark.parametrize("dtype", [">i8", ">u8", ">i4", ">u2"])
def test_big_endian_integer_arrays(dtype: str) -> None:
    values = [0, 1, 2, 123, 255]
    expected = [ref_hash("xxh3", str(v).encode(), "s") for v in values]
    assert_batch(ts.hash64_batch(np.array(values, dtype=dtype), "s"), expected)


def test_big_endian_unicode_array() -> None:
    values = ["ab", "café", "用户"]
    expected = [ref_hash("xxh3", v.encode(), "s") for v in values]
    assert_batch(ts.hash64_batch(np.array(values, dtype=">U4"), "s"), expected)


class _LoudInt(int):
    def __str__(self) -> str:
        return "not-the-value"


def test_int_subclass_beyond_64_bits_hashes_its_value() -> None:
    assert ts.hash64(_LoudInt(5), "s") == ref_hash("xxh3", b"5", "s")  # fine within 64 bits
    assert ts.hash64(_LoudInt(2**70), "s") == ref_hash("xxh3", str(2**70).encode(), "s")


def test_ints_beyond_pythons_text_limit_are_a_unit_value_error() -> None:
    import sys

    limit = sys.get_int_max_str_digits()
    if limit == 0:
        pytest.skip("no int-to-text limit in this interpreter")
    with pytest.raises(
        ts.UnitValueError,
        match=r"unit id is an integer with more digits than Python "
        r"converts to text",
    ):
        ts.hash64(10 ** (limit + 1), "s")


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb"])
def test_salts_and_keys_must_be_valid_unicode(bad: str) -> None:
    with pytest.raises(
        ts.ArgumentError,
        match=r"salt must be valid Unicode \(it contains a lone "
        r"surrogate\)",
    ):
        ts.hash64("u", bad)
    with pytest.raises(ts.ConfigError, match=r"salt must be valid Unicode"):
        ts.Experiment("k", {"a": 100}, salt=bad)
    with pytest.raises(ts.ConfigError, match=r"key must be valid Unicode"):
        ts.Experiment(bad, {"a": 100})


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_hash64_batch_checks_threads(threads: object) -> None:
    with pytest.raises(
        ts.ArgumentError, match=r"threads must be None \(all cores\) or an int >= 1"
    ):
        ts.hash64_batch(["a"], "s", threads=threads)  # type: ignore[arg-type]


def test_hash64_batch_names_itself_in_errors() -> None:
    with pytest.raises(
        ts.UnitTypeError,
        match=r"^hash64_batch expects a collection of unit ids, "
        r"got a single str; use hash64\(\) for one unit",
    ):
        ts.hash64_batch("abc", "s")


def test_core_apportion_is_callable_from_python() -> None:
    # every binding file sees the same std::vector converter (an ODR hazard otherwise)
    from trafficsplit import _core

    assert _core.hashing.apportion([50.0, 30.0, 20.0], 10_000) == [5000, 3000, 2000]
    assert sum(_core.hashing.apportion([100 / 3] * 3, 10_000)) == 10_000


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint8"])
def test_integer_columns_of_every_length_hash_as_their_decimal_text(dtype: str) -> None:
    """Integer columns are formatted a block of rows at a time (vector code where the CPU has
    it): every length of decimal text, signs and the extremes, against xxhash on the text."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    values = [info.min, info.max, 0, 1, -1 if info.min < 0 else 2]
    p = 1
    while p < info.max:
        values += [v for v in (p - 1, p, p + 1, -p, -p - 1) if info.min <= v <= info.max]
        p *= 10
    bits = info.bits
    for shift in range(bits):  # every magnitude
        hi = min(info.max, 2 ** (bits - shift - 1) if info.min < 0 else 2 ** (bits - shift) - 1)
        lo = max(info.min, -hi) if info.min < 0 else 0
        values += rng.integers(lo, hi, size=40, endpoint=True, dtype=dtype).tolist()
    arr = np.array(values, dtype=dtype)
    got = ts.hash64_batch(arr, "ids")
    assert not np.ma.getmaskarray(got).any()
    expected = [ts.hash64(str(int(v)), "ids") for v in arr]  # the text, hashed by the scalar path
    assert got.tolist() == expected
    exp = ts.Experiment("ids", {"a": 50, "b": 50})
    assert exp.assign_batch(arr).bucket.tolist() == [exp.assign(int(v)).bucket for v in arr]


_SIMD_LEVEL_CODE = """
import json, sys
import numpy as np, xxhash, mmh3, trafficsplit as ts
rng = np.random.default_rng(9)
edges = []
for k in range(20):  # around every power of ten and the chunk boundaries 10^8, 10^16
    for d in (-1, 0, 1):
        edges.append(10**k + d)
for m in (10**8, 10**16):
    for q in (1, 7, 99, 1844, 10**8 - 1):
        for d in (-1, 0, 1):
            edges.append(q * m + d)
for q in (92233720368, 123456789012, 184467440737):  # x above 2^53 that a double rounds
    edges += [q * 10**8 + d for d in range(-2048, 2049, 64)]  # across a multiple of 10^8
edges += [2**63 - 1, 2**63, 2**64 - 1, 2**53, 2**53 + 1, 2**52 - 1]
edges = [v for v in edges if v < 2**64]
signed = [v for v in edges if v <= 2**63 - 1]
a = np.concatenate([
    rng.integers(-2**63, 2**63 - 1, 20000, dtype=np.int64, endpoint=True),
    rng.integers(-10**9, 10**9, 3000, dtype=np.int64),
    np.array(signed + [-v for v in signed] + [-2**63], dtype=np.int64),
])
u = np.concatenate([
    rng.integers(0, 2**64 - 1, 20000, dtype=np.uint64, endpoint=True),
    np.array(edges, dtype=np.uint64),
])
salt = "s"
xx_seed = xxhash.xxh3_64_intdigest(salt.encode())
mm_seed = mmh3.hash(salt.encode(), 0, signed=False)
bad = []
for arr in (a, u, a.astype(np.int32), u.astype(np.uint16)):
    text = [str(int(v)).encode() for v in arr]
    want = {
        "xxh3": [xxhash.xxh3_64_intdigest(t, seed=xx_seed) for t in text],
        "murmur3": [mmh3.hash(t, mm_seed, signed=False) for t in text],
    }
    for algorithm, expected in want.items():
        got = ts.hash64_batch(arr, salt, algorithm).tolist()
        rows = zip(arr, got, expected)
        bad += [(str(arr.dtype), algorithm, int(v)) for v, g, e in rows if g != e]
    exp = ts.Experiment("ids", {"a": 50, "b": 50}, exposure=0.7)
    batch = exp.assign_batch(arr)
    scalar = [exp.assign(int(v)) for v in arr]
    if batch.bucket.tolist() != [r.bucket for r in scalar]:
        bad.append((str(arr.dtype), "assign_batch bucket", None))
    if batch.arm_index.tolist() != [r.arm_index for r in scalar]:
        bad.append((str(arr.dtype), "assign_batch arm", None))
from trafficsplit._core import hashing
print(json.dumps({"rows": int(len(a) + len(u)), "bad": bad[:5], "bad_count": len(bad),
                  "path": hashing.simd_path()}))
"""


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TRAFFICSPLIT_SIMD": "avx2"},
        {"TRAFFICSPLIT_SIMD": "none"},
        {"TRAFFICSPLIT_SCALAR": "1"},
    ],
    ids=["widest", "avx2", "none", "scalar-alias"],
)
def test_every_integer_code_path_matches_the_reference(env: dict[str, str]) -> None:
    """Integer columns go through AVX-512, AVX2 or portable code, whichever the CPU has and
    TRAFFICSPLIT_SIMD allows. Each path, on random ids and on the values either side of every
    power of ten and chunk boundary, hashes to what xxhash and mmh3 give for the decimal text,
    and assigns as the scalar path does."""
    import json
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRAFFICSPLIT_S")}
    out = subprocess.run(
        [sys.executable, "-c", _SIMD_LEVEL_CODE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    assert result["rows"] > 40_000
    assert result["bad_count"] == 0, result["bad"]
    allowed = {
        "TRAFFICSPLIT_SIMD": {"avx2": {"avx2", "portable"}, "none": {"portable"}},
        "TRAFFICSPLIT_SCALAR": {"1": {"portable"}},
    }
    for name, value in env.items():
        assert result["path"] in allowed[name][value]
