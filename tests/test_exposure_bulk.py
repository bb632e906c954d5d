"""Bulk exposure tables into JSON Lines: the column-wise encoder (``table_jsonl``, C++) writes
the same bytes as the record path (``ExposureBatch.jsonl``) for the same records, hostile text
included, and JsonlSink keeps its guarantees for tables: a record that cannot be encoded is set
aside alone, no partial line on a full disk, rotation by size, a removed folder recreated, and
``read_exposures`` reads the files back equal to what the Parquet sink stores."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.telemetry.records import ExposureBatch, exposure_schema, table_jsonl

T1 = pd.Timestamp("2026-02-01", tz="UTC")
CONFIG = {
    "experiments": [
        {"key": "ranker", "arms": {"control": 30, "treatment": 70}, "exposure": 0.5},
        {
            "key": 'quo"ted\u00e9',
            "arms": {"a\\b": 10, "b\n\u2028": 90},
            "exposure": 0.8,
            "allocated_at": T1.isoformat(),
            "history": [
                {"at": "2026-01-01T00:00:00+00:00", "weights": {"a\\b": 50, "b\n\u2028": 50}}
            ],
            "overrides": {"a\\b": ["vip"]},
        },
    ]
}
# Text a caller may hand over: quotes, backslashes, every control character, DEL, non-ASCII,
# line separators, non-BMP characters.
HOSTILE = [
    'q"uo"te',
    "back\\slash\\",
    "".join(map(chr, range(32))),
    "\x7f del",
    "\u00e9t\u00e9 \u4e2d\u6587",
    "line\u2028para\u2029",
    "emoji \U0001f600 \U00010348",
    "",
]


class Tables(ts.ExposureSink):
    """Keeps the bulk tables the logger hands over."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []

    def write(self, records):
        return None

    def write_table(self, table):
        self.tables.append(table)


def bulk_tables(n: int = 3_000, attributes: bool = True) -> list[pa.Table]:
    """The tables Splitter.assign_frame(log_exposures=True) makes, with hostile units and
    attributes, times across an allocation change and an override."""
    sink = Tables()
    lg = ts.ExposureLogger(sink, attributes=["country", "note", "score"] if attributes else ())
    sp = ts.Splitter(CONFIG, exposures=lg)
    units = [f"user-{i}" if i % 7 else HOSTILE[i % len(HOSTILE)] + str(i) for i in range(n - 2)]
    df = pd.DataFrame(
        {
            "user_id": [*units, None, "vip"],
            "country": (["US", None, 'D"E', "\u00e9\n"] * n)[:n],
            "note": [HOSTILE[i % len(HOSTILE)] for i in range(n)],
            "score": np.where(np.arange(n) % 5 == 0, np.nan, np.arange(n) / 3),
            "at": T1 + pd.to_timedelta(np.arange(n) - n // 2, "s"),
        }
    )
    sp.assign_frame(df, "user_id", at_column="at", log_exposures=True)
    lg.close()
    assert len(sink.tables) == 2
    return sink.tables


def record_path(table: pa.Table) -> tuple[bytes, list[int], list[str]]:
    """What the record path writes for a table's records: the reference."""
    parts, bad, why = ExposureBatch.from_table(table).encodable(ExposureBatch.jsonl_bytes)
    return b"".join(parts), bad, why


def bulk_path(table: pa.Table, chunk_bytes: int = 1 << 20) -> tuple[bytes, list[int], list[str]]:
    data, bad, why = b"", [], []
    for lines, aside, names in table_jsonl(table, chunk_bytes):
        data += bytes(lines)
        bad += aside
        why += names
    return data, bad, why


def jsonl_files(folder: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(folder.glob("*.jsonl")))


# -- the same bytes ------------------------------------------------------------------------------


def test_bulk_tables_give_the_bytes_of_the_record_path(tmp_path):
    for table in bulk_tables():
        assert table.column("attributes").null_count < table.num_rows
        want = record_path(table)
        assert want[0] and not want[1]
        assert bulk_path(table) == want
        # Chunks much smaller than a table, and smaller than one line: the same bytes.
        assert bulk_path(table, chunk_bytes=4_096) == want
        assert bulk_path(table, chunk_bytes=64) == want
    # Through the sinks: write_table (bulk) against write (records) of the same records.
    tables = bulk_tables()
    bulk = ts.JsonlSink(tmp_path / "bulk")
    records = ts.JsonlSink(tmp_path / "records")
    for table in tables:
        assert bulk.write_table(table) is None
        assert records.write(ExposureBatch.from_table(table)) is None
    bulk.close()
    records.close()
    assert jsonl_files(tmp_path / "bulk") == jsonl_files(tmp_path / "records")


def test_each_line_states_its_record_as_json_says(tmp_path):
    # An independent reading: every line parses to the table's row, keys in schema order,
    # attributes re-encoded with sorted keys, the time in ISO 8601 with +00:00.
    (table, _) = bulk_tables(600)
    data, bad, _ = bulk_path(table)
    assert not bad
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""
    rows = table.to_pylist()
    assert len(lines) - 1 == len(rows)
    for line, row in zip(lines, rows, strict=False):
        body = json.loads(line)
        assert list(body) == list(exposure_schema().names)
        assert pd.Timestamp(body["timestamp"]) == row["timestamp"]
        assert body["timestamp"].endswith("+00:00")
        for field in ("unit", "experiment", "arm", "bucket", "reason", "version", "mismatch"):
            assert body[field] == row[field]
        assert body["probability"] == row["probability"]
        assert repr(row["probability"]) in line
        assert body["attributes"] == json.loads(row["attributes"])
        assert json.dumps(body["attributes"], ensure_ascii=False, sort_keys=True) in line


# -- hypothesis: hostile tables --------------------------------------------------------------

# Text Arrow can hold as Python str (no lone surrogates: pyarrow refuses them).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from('"\\\n\x00\x1f\x7f'),
    max_size=12,
)
# Bytes that are not UTF-8: a lone surrogate in UTF-8 form, stray and cut sequences, overlongs.
NOT_UTF8 = st.sampled_from(
    [
        b"\xed\xa0\x80",
        b"x\xed\xbf\xbfy",
        b"\xff",
        b"\xc3",
        b"ab\xe2\x82",
        b"\xc0\xaf",
        b"\xf4\x90\x80\x80",
    ]
)
MICROS = st.one_of(
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.integers(-62_167_219_200_000_000 - 10, 253_402_300_800_000_000 + 10),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(1e-30, 1.0),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1 / 3, 1e-5, 1e-4, 1e15, 1e16, 1e17, 123456789.125]),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
ODD_ATTRIBUTES = st.sampled_from(
    ['{"k": "\\ud800"}', "[1, 2]", '"text"', "null", '{"b": 1, "a": {"d": 2, "c": 3}}', "{no"]
)


def mostly(common, *odd):
    """``common`` nine times in ten; else one of ``odd`` (the values a record path refuses or
    writes another way), so that most rows take the column-wise encoder."""
    return st.integers(0, 9).flatmap(lambda k: st.one_of(*odd) if k == 0 else common)


ROW = st.fixed_dictionaries(
    {
        "timestamp": mostly(st.integers(0, 2**53), MICROS, st.none()),
        "unit": mostly(st.one_of(st.none(), TEXT), NOT_UTF8),
        "experiment": mostly(TEXT, NOT_UTF8, st.none()),
        "arm": mostly(st.sampled_from(["control", 'tr"eat']) | TEXT, st.none()),
        "bucket": mostly(st.integers(-(2**31), 2**31 - 1), st.none()),
        "reason": st.sampled_from(["assigned", "override", "sticky", "propagated"]),
        "version": mostly(TEXT, st.none()),
        "probability": mostly(FLOATS, st.none(), st.sampled_from([math.nan, math.inf, -math.inf])),
        "attributes": mostly(
            st.one_of(
                st.none(),
                st.dictionaries(TEXT, JSON_VALUE, max_size=4).map(
                    lambda d: json.dumps(d, ensure_ascii=False)
                ),
                st.dictionaries(TEXT, JSON_VALUE, max_size=3).map(json.dumps),  # \u escapes
            ),
            ODD_ATTRIBUTES,
        ),
        "request_id": mostly(st.one_of(st.none(), TEXT), NOT_UTF8),
        "evaluated_arm": st.one_of(st.none(), TEXT),
        "mismatch": st.one_of(st.none(), st.booleans()),
        "propagation": st.one_of(st.none(), TEXT),
    }
)


def text_array(values: list) -> pa.Array:
    """A utf8 array of str and raw bytes (bytes that are not UTF-8 stay as they are)."""
    raw = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    return pa.array(raw, pa.binary()).view(pa.string())


def coded(values: list) -> pa.Array:
    """Dictionary-encoded text; a None is a null index, or (every other one) an index that
    points at a null dictionary value."""
    texts = text_array(values)
    indices = [None if v is None and i % 2 else i for i, v in enumerate(values)]
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), texts)


def hostile_table(rows: list[dict]) -> pa.Table:
    schema = exposure_schema()
    col = {f: [r[f] for r in rows] for f in schema.names}
    arrays = [
        pa.array(col["timestamp"], pa.int64()).cast(schema.field("timestamp").type),
        text_array(col["unit"]),
        coded(col["experiment"]),
        coded(col["arm"]),
        pa.array(col["bucket"], pa.int32()),
        coded(col["reason"]),
        coded(col["version"]),
        pa.array(col["probability"], pa.float64()),
        pa.array(col["attributes"], pa.string()),
        text_array(col["request_id"]),
        pa.array(col["evaluated_arm"], pa.string()),
        pa.array(col["mismatch"], pa.bool_()),
        pa.array(col["propagation"], pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=25), chunk=st.sampled_from([64, 700, 1 << 20]))
def test_hostile_tables_are_written_or_set_aside_as_the_record_path_does(rows, chunk):
    table = hostile_table(rows)
    try:
        want = record_path(table)
    except ValueError:  # attributes that are not JSON: the record path cannot read the table
        with pytest.raises(ValueError):
            bulk_path(table, chunk)
        return
    assert bulk_path(table, chunk) == want


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=2, max_size=12), cut=st.integers(1, 11))
def test_hostile_rows_in_split_batches_keep_their_positions(rows, cut):
    # A table of several record batches, each a slice: positions count from the table's start.
    table = hostile_table(rows)
    cut = min(cut, len(rows) - 1)
    chunked = pa.Table.from_batches(
        [*table.slice(0, cut).to_batches(), *table.slice(cut).to_batches()]
    )
    assert chunked.num_rows == table.num_rows and len(chunked.to_batches()) == 2
    try:
        want = record_path(table)
    except ValueError:
        with pytest.raises(ValueError):
            bulk_path(chunked)
        return
    assert bulk_path(chunked) == want


@settings(max_examples=300, deadline=None)
@given(p=FLOATS, micros=MICROS)
def test_numbers_are_written_as_python_and_numpy_write_them(p, micros):
    row = {f: None for f in exposure_schema().names}
    row.update(timestamp=micros, experiment="e", arm="a", bucket=1, reason="assigned")
    row.update(version="v", probability=p)
    data, bad, _ = bulk_path(hostile_table([row]))
    stamp = np.datetime_as_string(np.array([micros], np.int64).view("datetime64[us]"), unit="us")
    assert f'"probability":{p!r},' in data.decode()
    assert f'"timestamp":"{stamp[0]}+00:00"' in data.decode()
    assert not bad and math.isfinite(p)


# -- the sink's guarantees for tables ----------------------------------------------------------


def test_a_bad_row_of_a_bulk_table_is_set_aside_alone(tmp_path):
    (table, _) = bulk_tables(2_000, attributes=False)
    n = table.num_rows
    rows = table.to_pylist()
    # Row 100 gets a unit that is not UTF-8, row 700 no arm.
    unit = text_array([r["unit"] if i != 100 else b"user-\xed\xa0\x80" for i, r in enumerate(rows)])
    arm = table.column("arm").combine_chunks()
    arm = pa.DictionaryArray.from_arrays(
        pa.array(
            [None if i == 700 else k for i, k in enumerate(arm.indices.to_pylist())], pa.int32()
        ),
        arm.dictionary,
    )
    bad = table.set_column(1, "unit", unit).set_column(3, "arm", arm)
    lg = ts.ExposureLogger(ts.JsonlSink(tmp_path))
    lg.log_table(bad)
    lg.close()
    c = lg.counters()
    assert (c.written, c.set_aside, c.failed, c.errors) == (n - 2, 2, 0, 0)
    aside = lg.set_aside_records()
    assert [a.position for a in aside] == [100, 700]
    assert [a.error for a in aside] == ["UnicodeEncodeError", "TypeError"]
    assert aside[1].record.unit == rows[700]["unit"]
    got = ts.read_exposures(tmp_path)
    assert got["unit"].tolist() == [r["unit"] for i, r in enumerate(rows) if i not in (100, 700)]


@contextlib.contextmanager
def small_disk(size: str = "256k") -> Iterator[Path]:
    """A real filesystem of ``size`` bytes (tmpfs), mounted for the test and unmounted after."""
    where = Path(tempfile.mkdtemp(prefix="trafficsplit-bulk-disk-"))
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
        try:
            yield where
        finally:
            subprocess.run(["umount", "-l", str(where)], check=True)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_a_bulk_table_on_a_full_disk_leaves_whole_lines_and_counts_the_rest():
    tables = bulk_tables(4_000)
    total = sum(t.num_rows for t in tables)
    with small_disk() as disk:
        lg = ts.ExposureLogger(ts.JsonlSink(disk / "exposures"))
        for t in tables:
            lg.log_table(t)
        lg.close()
        c = lg.counters()
        data = jsonl_files(disk / "exposures")
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert 0 < len(lines) < total
    assert (c.written, c.failed, c.set_aside) == (len(lines), total - len(lines), 0)
    # What is on disk is the beginning of the record path's bytes, cut at a line.
    want = b"".join(record_path(t)[0] for t in tables)
    assert want.startswith(data)


def test_a_bulk_table_larger_than_rotate_bytes_is_spread_over_files(tmp_path):
    tables = bulk_tables(3_000)
    sink = ts.JsonlSink(tmp_path, rotate_bytes=50_000, rotate_seconds=None)
    for t in tables:
        assert sink.write_table(t) is None
    sink.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    sizes = [f.stat().st_size for f in files]
    data = b"".join(record_path(t)[0] for t in tables)
    assert len(files) >= len(data) // 50_000
    assert all(s <= 50_000 for s in sizes)
    # Every file is full to within one line, the last excepted.
    longest = max(len(line) + 1 for line in data.split(b"\n"))
    assert all(s > 50_000 - longest for s in sizes[:-1])
    assert all(f.read_bytes().endswith(b"\n") for f in files)
    assert jsonl_files(tmp_path) == data


def test_a_line_longer_than_rotate_bytes_gets_a_file_of_its_own(tmp_path):
    row = {f: None for f in exposure_schema().names}
    row.update(timestamp=0, experiment="e", arm="a", bucket=1, reason="assigned", version="v")
    row.update(probability=0.5)
    rows = [dict(row, unit=f"u{i}" * (300 if i == 2 else 1)) for i in range(5)]
    sink = ts.JsonlSink(tmp_path, rotate_bytes=500, rotate_seconds=None)
    assert sink.write_table(hostile_table(rows)) is None
    sink.close()
    files = [f.read_bytes() for f in sorted(tmp_path.glob("*.jsonl"))]
    assert [f.count(b"\n") for f in files] == [2, 1, 2]
    assert b"".join(files) == record_path(hostile_table(rows))[0]


def test_a_removed_folder_is_recreated_for_a_bulk_table(tmp_path):
    folder = tmp_path / "exposures"
    first, second = bulk_tables(2_000, attributes=False)
    lg = ts.ExposureLogger(ts.JsonlSink(folder))
    lg.log_table(first)
    assert lg.flush(30)
    shutil.rmtree(folder)
    lg.log_table(second)
    lg.close()
    assert jsonl_files(folder) == record_path(second)[0]
    c = lg.counters()
    assert (c.written, c.failed) == (first.num_rows + second.num_rows, 0)


def test_read_exposures_reads_bulk_jsonl_back_as_the_parquet_sink_stores_it(tmp_path):
    # assign_frame into both sinks at once; the two files read back to the same frame.
    n = 5_000
    lg = ts.ExposureLogger(
        [ts.JsonlSink(tmp_path / "jsonl"), ts.ParquetSink(tmp_path / "parquet")],
        attributes=["country", "note"],
    )
    sp = ts.Splitter(CONFIG, exposures=lg)
    df = pd.DataFrame(
        {
            "user_id": [f"user-{i}" if i % 11 else HOSTILE[i % len(HOSTILE)] for i in range(n)],
            "country": (["US", None, 'D"E'] * n)[:n],
            "note": [HOSTILE[i % len(HOSTILE)] for i in range(n)],
        }
    )
    out = sp.assign_frame(df, "user_id", log_exposures=True)
    lg.close()
    assert lg.counters().written == sum(int(out[k].notna().sum()) for k in sp.snapshot.experiments)
    from_jsonl = ts.read_exposures(tmp_path / "jsonl")
    from_parquet = ts.read_exposures(tmp_path / "parquet")
    assert len(from_jsonl) == lg.counters().written
    pd.testing.assert_frame_equal(from_jsonl, from_parquet)
