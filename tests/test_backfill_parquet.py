"""The backfill's own Parquet writer (``trafficsplit._parquet``): whatever it writes, pyarrow and
DuckDB read back exactly what pyarrow's writer gives for the same columns, with the same Parquet
annotations; Spark reads it in tests/test_spark.py. Columns of every served type, nulls, sliced
arrays, row groups of any size, dictionaries of any width."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit import _core
from trafficsplit._parquet import PAGE_ROWS, NativeParquetWriter, supported
from trafficsplit.batch import REASONS, BatchAssignment

TYPES = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "date32": pa.date32(),
    "ts_ns_utc": pa.timestamp("ns", tz="UTC"),
    "ts_us": pa.timestamp("us"),
    "ts_ms_paris": pa.timestamp("ms", tz="Europe/Paris"),
}


def _values(rng: np.random.Generator, kind: str, n: int, nulls: float) -> pa.Array:
    mask = rng.random(n) < nulls
    t = TYPES[kind]
    if kind in ("string", "large_string"):
        words = ["", "a", "ünï", "user-🙂", "x" * 300]
        values: list[Any] = [
            f"{words[i % 5]}{i}" if i % 11 else "" for i in rng.integers(0, 10**9, n)
        ]
    elif kind in ("binary", "large_binary"):
        values = [
            bytes(rng.integers(0, 256, int(k), dtype=np.uint8)) for k in rng.integers(0, 40, n)
        ]
    elif kind == "int32" or kind == "date32":
        values = rng.integers(-(2**31), 2**31, n).tolist()
    elif kind == "int64":
        values = rng.integers(-(2**62), 2**62, n).tolist()
    else:  # timestamps within what DuckDB converts (a few decades around 1970 in ms)
        values = rng.integers(-(2**40), 2**40, n).tolist()
    if kind == "date32":
        values = [v % 2_000_000 for v in values]
    values = [None if m else v for v, m in zip(values, mask, strict=True)]
    return pa.array(values, t)


def _results(rng: np.random.Generator, n: int, arms: int, missing: float) -> BatchAssignment:
    names = tuple(f"arm-{i}" for i in range(arms))
    arm = rng.integers(-1, arms, n).astype(np.int16)
    bucket = rng.integers(0, 10_000, n).astype(np.int32)
    bucket[rng.random(n) < missing] = -1
    reason = rng.integers(0, len(REASONS), n).astype(np.uint8)
    return BatchAssignment("e", names, arm, bucket, reason)


def _schema(kept: dict[str, pa.DataType], experiments: int, nullable: bool = True) -> pa.Schema:
    fields = [pa.field(name, t, nullable=nullable) for name, t in kept.items()]
    for e in range(experiments):
        fields += [
            pa.field(f"e{e}", pa.dictionary(pa.int16(), pa.string())),
            pa.field(f"e{e}_bucket", pa.int32()),
            pa.field(f"e{e}_reason", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        ]
    return pa.schema(fields)


def _write_both(
    tmp: Path,
    schema: pa.Schema,
    kept: list[str],
    batches: list[tuple[list[pa.Array], list[BatchAssignment]]],
    codecs: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    """The same batches through the native writer and through pyarrow's, with the same
    codecs."""
    native, reference = tmp / "native.parquet", tmp / "pyarrow.parquet"
    arms = [b.arms for b in batches[0][1]] if batches else []
    w = NativeParquetWriter(native, schema, kept, arms, codecs=codecs)
    compression = codecs or "none"
    with pq.ParquetWriter(reference, schema, compression=compression) as p:
        for arrays, results in batches:
            w.write(arrays, results)
            columns = list(arrays)
            for b in results:
                columns.extend(b.arrow_columns())
            p.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
    w.close()
    return native, reference


def _annotations(path: Path) -> list[tuple[Any, ...]]:
    s = pq.ParquetFile(path).schema
    return [
        (
            c.name,
            c.physical_type,
            str(c.logical_type),
            c.converted_type,
            c.max_definition_level,
        )
        for c in (s.column(i) for i in range(len(s)))
    ]


def _check_same(native: Path, reference: Path) -> None:
    a, b = pq.read_table(native), pq.read_table(reference)
    assert a.schema == b.schema
    assert a.equals(b)
    assert _annotations(native) == _annotations(reference)
    assert pq.ParquetFile(native).metadata.created_by.startswith("trafficsplit version ")
    names = ", ".join(f'"{c}"' for c in a.column_names)
    query = f"SELECT {names} FROM read_parquet('{{}}')"
    assert (
        duckdb.sql(query.format(native)).fetchall()
        == duckdb.sql(query.format(reference)).fetchall()
    )


def test_every_served_type_with_nulls_slices_and_several_row_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    n = PAGE_ROWS + 5_000  # two pages in the first row group
    kept = {name: TYPES[name] for name in TYPES}
    schema = _schema(kept, 2)
    full = {name: _values(rng, name, n + 100, 0.1) for name in kept}
    batches = []
    for start, size in ((0, n), (37, 4_003), (5, 1)):  # slices at odd offsets of the bitmaps
        arrays = [full[name].slice(start, size) for name in kept]
        batches.append((arrays, [_results(rng, size, 3, 0.02), _results(rng, size, 300, 0.0)]))
    native, reference = _write_both(tmp_path, schema, list(kept), batches)
    _check_same(native, reference)
    meta = pq.ParquetFile(native).metadata
    assert meta.num_row_groups == 3 and meta.num_rows == n + 4_004
    # min/max statistics for the kept columns that are not text, as pyarrow writes them
    ref = pq.ParquetFile(reference).metadata
    for i, name in enumerate(kept):
        got, want = meta.row_group(0).column(i), ref.row_group(0).column(i)
        if kept[name] in (pa.string(), pa.large_string(), pa.binary(), pa.large_binary()):
            assert not got.is_stats_set
            continue
        assert (got.statistics.min_raw, got.statistics.max_raw, got.statistics.null_count) == (
            want.statistics.min_raw,
            want.statistics.max_raw,
            want.statistics.null_count,
        ), name


def test_columns_without_nulls_all_nulls_and_required(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 1_000
    kept = {"s": pa.string(), "i": pa.int64()}
    cases = [
        ([pa.array([f"u{i}" for i in range(n)]), pa.array(range(n), pa.int64())], True),
        ([pa.array([None] * n, pa.string()), pa.array([None] * n, pa.int64())], True),
        ([pa.array([""] * n), pa.array([0] * n, pa.int64())], False),
    ]
    for i, (arrays, nullable) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        schema = _schema(kept, 1, nullable=nullable)
        # every arm and every bucket missing, then none missing
        none = BatchAssignment(
            "e", ("arm-0", "arm-1"), np.full(n, -1, np.int16), np.full(n, -1, np.int32),
            np.zeros(n, np.uint8),
        )  # fmt: skip
        batches = [(arrays, [none]), (arrays, [_results(rng, n, 2, 0.0)])]
        _check_same(*_write_both(folder, schema, list(kept), batches))


def test_a_declared_not_null_column_with_nulls_is_refused(tmp_path: Path) -> None:
    schema = _schema({"s": pa.string()}, 1, nullable=False)
    w = NativeParquetWriter(tmp_path / "x.parquet", schema, ["s"], [("a", "b")])
    with pytest.raises(ts.ArgumentError, match="'s' is declared not null but has 1 nulls"):
        w.write([pa.array(["a", None])], [_results(np.random.default_rng(1), 2, 2, 0.0)])
    w.abort()


def test_types_it_does_not_serve_go_to_pyarrow() -> None:
    served = [t for t in TYPES.values() if supported(pa, t)]
    assert served == list(TYPES.values())
    others = [pa.float64(), pa.int16(), pa.uint64(), pa.timestamp("s"), pa.string_view(),
              pa.dictionary(pa.int32(), pa.string()), pa.list_(pa.int64()), pa.bool_()]  # fmt: skip
    for t in others:
        assert not supported(pa, t), t


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=st.lists(st.sampled_from(sorted(TYPES)), min_size=0, max_size=3, unique=True),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=3),
    offset=st.integers(0, 17),
    arms=st.lists(st.integers(1, 40), min_size=1, max_size=2),
    nulls=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_columns_read_back_as_pyarrow_writes_them(
    tmp_path_factory: pytest.TempPathFactory,
    kinds: list[str],
    sizes: list[int],
    offset: int,
    arms: list[int],
    nulls: float,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("pq")
    kept = {k: TYPES[k] for k in kinds}
    schema = _schema(kept, len(arms))
    batches = []
    for size in sizes:
        arrays = [_values(rng, k, size + offset, nulls).slice(offset, size) for k in kinds]
        batches.append((arrays, [_results(rng, size, a, nulls / 2) for a in arms]))
    _check_same(*_write_both(tmp, schema, list(kept), batches))


def test_dictionary_bit_widths() -> None:
    assert [_core.parquet.index_bit_width(k) for k in (1, 2, 3, 4, 5, 256, 257, 32_767)] == [
        1, 1, 2, 2, 3, 8, 9, 15,
    ]  # fmt: skip


def test_the_page_encoders_refuse_what_would_read_out_of_bounds() -> None:
    out = np.empty(1 << 12, np.uint8)
    offsets = np.array([0, 4, 2, 6], np.int32)  # the second value ends before it starts
    with pytest.raises(ts.ArgumentError, match="offsets are out of order at row 1"):
        _core.parquet.binary_page(offsets, b"abcdef", None, 0, 0, 3, False, True, out)
    with pytest.raises(ts.ArgumentError, match="offsets point past the data"):
        _core.parquet.binary_page(
            np.array([0, 9], np.int32), b"abc", None, 0, 0, 1, False, True, out
        )
    with pytest.raises(ts.ArgumentError, match="offsets are shorter than the rows"):
        _core.parquet.binary_page(np.array([0, 1], np.int32), b"a", None, 0, 0, 2, False, True, out)
    with pytest.raises(ts.ArgumentError, match="validity bitmap is shorter"):
        _core.parquet.fixed_page(np.zeros(16, np.int64), 8, b"\xff", 0, 0, 16, True, out)
    with pytest.raises(ts.ArgumentError, match="values are shorter"):
        _core.parquet.fixed_page(np.zeros(4, np.int64), 8, None, 0, 2, 3, True, out)
    # too small an output: the size it needs, nothing written
    assert _core.parquet.fixed_page(np.zeros(4096, np.int64), 8, None, 0, 0, 4096, False, out) < -(
        8 * 4096 - 1
    )


def test_backfill_writes_natively_unless_a_type_or_codec_asks_for_pyarrow(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 5_000
    ids = [bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex() for _ in range(n)]
    pq.write_table(
        pa.table(
            {
                "user_id": ids,
                "score": rng.random(n),
                "seen": pa.array(rng.integers(0, 2**62, n), pa.timestamp("us", tz="UTC")),
            }
        ),
        tmp_path / "in.parquet",
    )
    config = {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}

    def writer(name: str, **kw: Any) -> str:
        ts.backfill(config, tmp_path / "in.parquet", tmp_path / name, "user_id", **kw)
        return str(pq.ParquetFile(tmp_path / name).metadata.created_by).split(" ")[0]

    assert writer("a.parquet") == "trafficsplit"  # random ids: no codec under auto
    assert writer("b.parquet", keep=["user_id", "seen"]) == "trafficsplit"
    assert writer("c.parquet", keep=["user_id", "score"]) == "parquet-cpp-arrow"  # a float
    assert writer("d.parquet", compression="zstd") == "trafficsplit"
    assert writer("e.parquet", compression="none") == "trafficsplit"
    assert writer("f.parquet", compression="gzip") == "parquet-cpp-arrow"
    a, c = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "c.parquet")
    assert a.drop_columns([]).equals(c.select(a.column_names))


def test_pages_larger_than_the_staging_buffer_and_writes_without_direct_io(
    tmp_path: Path,
) -> None:
    """A page of 30 MB (the staging buffer grows); the same file written through the page
    cache (what filesystems that refuse O_DIRECT get) and on tmpfs: byte for byte the file
    written with direct I/O."""
    rng = np.random.default_rng(8)
    n = 150
    big = pa.array([bytes(rng.integers(0, 256, 200_000, dtype=np.uint8)).hex() for _ in range(n)])
    schema = _schema({"s": pa.string()}, 1)
    batches = [([big], [_results(rng, n, 2, 0.0)]), ([big.slice(3, 7)], [_results(rng, 7, 2, 0.0)])]
    native, reference = _write_both(tmp_path, schema, ["s"], batches)
    _check_same(native, reference)
    shm = Path("/dev/shm")
    places = [(tmp_path / "buffered.parquet", False)]
    if shm.is_dir():
        places.append((shm / f"trafficsplit-test-{os.getpid()}.parquet", True))
    for path, direct in places:
        try:
            w = NativeParquetWriter(path, schema, ["s"], [("arm-0", "arm-1")], direct=direct)
            for arrays, results in batches:
                w.write(arrays, results)
            w.close()
            assert path.read_bytes() == native.read_bytes(), path
        finally:
            path.unlink(missing_ok=True)


@pytest.mark.parametrize("codec", ["snappy", "zstd", "mixed"])
def test_compressed_columns_read_back_as_pyarrow_writes_them(tmp_path: Path, codec: str) -> None:
    rng = np.random.default_rng(12)
    kept = {k: TYPES[k] for k in ("string", "int64", "ts_us")}
    schema = _schema(kept, 2)
    n = PAGE_ROWS + 77
    arrays = [_values(rng, k, n, 0.2) for k in kept]
    batches = [(arrays, [_results(rng, n, 3, 0.1), _results(rng, n, 5, 0.0)])]
    names = schema.names
    codecs = (
        {name: "snappy" if i % 2 else "zstd" for i, name in enumerate(names)}
        if codec == "mixed"
        else dict.fromkeys(names, codec)
    )
    native, reference = _write_both(tmp_path, schema, list(kept), batches, codecs)
    _check_same(native, reference)
    meta = pq.ParquetFile(native).metadata.row_group(0)
    got = {meta.column(i).path_in_schema: meta.column(i).compression for i in range(len(names))}
    assert got == {k: v.upper() for k, v in codecs.items()}
    # (reading checks each page's sizes: a decompressed page of another size is an error)
    with pytest.raises(ts.ArgumentError, match="no Parquet codec"):
        NativeParquetWriter(tmp_path / "x.parquet", schema, list(kept), [("a",), ("b",)],
                            codecs={"string": "gzip"})  # fmt: skip


def test_an_output_that_would_be_copied_is_refused() -> None:
    """Pages are encoded into the caller's array in place: one numpy would have to convert
    (another dtype, a strided view, read-only) would take the page and lose it."""
    codes = np.zeros(16, np.uint8)
    for out in (np.empty(64, np.int8), np.empty(128, np.uint8)[::2], np.zeros(64, np.uint8)):
        if out.flags.c_contiguous and out.dtype == np.uint8:
            out.setflags(write=False)
        with pytest.raises(ts.ArgumentError, match="writable contiguous uint8 array"):
            _core.parquet.code_indices_page(codes, 1, out)
