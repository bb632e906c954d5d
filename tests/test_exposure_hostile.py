"""Exposure sinks under hostile conditions, on real files: records that cannot be encoded mixed
into good ones, a full disk (a real 256 KiB tmpfs), a folder removed while the logger runs and
damaged files in a folder that is read back."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit.telemetry.records import ExposureBatch

CONFIG = {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}
SINKS = {"jsonl": ts.JsonlSink, "parquet": ts.ParquetSink}


class Opaque:
    """An attribute value whose text cannot be made (json falls back to str())."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


def circular() -> list:
    value: list = ["secret-attribute-text"]
    value.append(value)
    return value


# What a hostile but realistic caller hands over: (attributes, request_id) of the bad record.
BAD = {
    "surrogate-attribute": ({"ctx": "secret-attribute-text\ud800"}, None),
    "surrogate-request-id": ({"ctx": "secret-attribute-text"}, "secret-request\udfff"),
    "non-str-key": ({"ctx": {"secret-attribute-text": 1, 2: "two"}}, None),
    "tuple-key": ({"ctx": {("secret", "attribute"): 1}}, None),
    "circular": ({"ctx": circular()}, None),
    "no-text": ({"ctx": Opaque()}, None),
    "int-request-id": ({"ctx": "secret-attribute-text"}, 12345),
}


def logged(folder: Path, sink: str, bad: str, n: int = 5_000, at: int = 2_345, **logger):
    """n decisions with one bad record at position ``at``; returns the closed logger."""
    lg = ts.ExposureLogger(SINKS[sink](folder), attributes=("ctx",), **logger)
    sp = ts.Splitter(CONFIG, exposures=lg)
    attributes, request_id = BAD[bad]
    for i in range(n):
        if i == at:
            sp.assign("e", f"user-{i}", attributes, request_id=request_id)
        else:
            sp.assign("e", f"user-{i}", {"ctx": f"attribute-{i}"}, request_id=f"request-{i}")
    lg.close()
    return lg


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("sink", sorted(SINKS))
def test_a_bad_record_is_set_aside_alone(tmp_path, caplog, sink, bad):
    with caplog.at_level(logging.DEBUG, logger="trafficsplit"):
        lg = logged(tmp_path, sink, bad)
    good = [f"user-{i}" for i in range(5_000) if i != 2_345]
    df = ts.read_exposures(tmp_path)
    assert df["unit"].tolist() == good
    assert df["request_id"].tolist() == [f"request-{u[5:]}" for u in good]
    assert [a["ctx"] for a in df["attributes"]] == [f"attribute-{u[5:]}" for u in good]
    c = lg.counters()
    assert (c.written, c.set_aside, c.failed, c.errors) == (4_999, 1, 0, 0)
    (aside,) = lg.set_aside_records()
    assert aside.position == 2_345
    assert aside.sink == SINKS[sink].__name__
    assert aside.record.unit == "user-2345"
    # One short line that says how many and where, never what.
    assert 0 < len(caplog.text) < 600, caplog.text
    assert "2345" in caplog.text
    assert "user-" not in caplog.text and "secret" not in caplog.text
    assert "attribute-" not in caplog.text and "request-" not in caplog.text


def test_a_sinks_exception_text_never_reaches_the_log(caplog):
    def leaky(records):
        raise ValueError(f"cannot store {list(records)!r}")

    lg = ts.ExposureLogger(ts.CallableSink(leaky, batch=True), attributes=("ctx",))
    sp = ts.Splitter(CONFIG, exposures=lg)
    with caplog.at_level(logging.DEBUG, logger="trafficsplit"):
        for i in range(100):
            sp.assign("e", f"user-{i}", {"ctx": "secret-attribute-text"})
        lg.close()
    c = lg.counters()
    assert (c.written, c.errors, c.failed) == (0, 1, 100)
    assert "ValueError" in caplog.text
    assert len(caplog.text) < 600, caplog.text
    assert "user-" not in caplog.text and "secret" not in caplog.text


def test_the_logging_sink_sets_aside_a_bad_record_alone(caplog):
    lg = ts.ExposureLogger(ts.LoggingSink("exposures-out"), attributes=("ctx",))
    sp = ts.Splitter(CONFIG, exposures=lg)
    with caplog.at_level(logging.INFO):
        for i in range(50):
            ctx = circular() if i == 20 else f"attribute-{i}"
            sp.assign("e", f"user-{i}", {"ctx": ctx})
        lg.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "exposures-out"]
    assert [json.loads(line)["unit"] for line in lines] == [
        f"user-{i}" for i in range(50) if i != 20
    ]
    c = lg.counters()
    assert (c.written, c.set_aside) == (49, 1)
    assert lg.set_aside_records()[0].position == 20


# -- a full disk -------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(size: str = "256k") -> Iterator[Path]:
    """A real filesystem of ``size`` bytes (tmpfs), mounted for the test and unmounted after."""
    where = Path(tempfile.mkdtemp(prefix="trafficsplit-full-disk-"))
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


def fill(sink: ts.ExposureSink, batches: int = 40, size: int = 250) -> ts.ExposureLogger:
    """Logs batches of records with incompressible attributes until well past a full disk."""
    lg = ts.ExposureLogger(sink, attributes=("noise",), batch_size=size, dedup_keys=0)
    sp = ts.Splitter(CONFIG, exposures=lg)
    for b in range(batches):
        for i in range(size):
            n = b * size + i
            sp.assign("e", f"user-{n}", {"noise": os.urandom(48).hex()})
        assert lg.flush(60)
    lg.close()
    return lg


def test_jsonl_on_a_full_disk_counts_exactly_what_is_on_disk(caplog):
    with small_disk() as disk, caplog.at_level(logging.ERROR, logger="trafficsplit"):
        lg = fill(ts.JsonlSink(disk / "exposures"))
        c = lg.counters()
        lines = []
        for f in sorted((disk / "exposures").glob("*.jsonl")):
            data = f.read_bytes()
            assert not data or data.endswith(b"\n"), f"{f.name} ends in a partial line"
            lines += [json.loads(line) for line in data.splitlines()]
        units = [r["unit"] for r in lines]
        assert units == [f"user-{i}" for i in range(len(units))]  # in order, no gap
        assert 0 < c.written == len(units) < 10_000
        assert c.written + c.failed == 10_000 and c.set_aside == 0
        assert ts.read_exposures(disk / "exposures")["unit"].tolist() == units
    assert "No space left on device" in caplog.text


def test_parquet_on_a_full_disk_publishes_only_complete_files(caplog):
    with small_disk() as disk, caplog.at_level(logging.ERROR, logger="trafficsplit"):
        folder = disk / "exposures"
        lg = fill(ts.ParquetSink(folder, rotate_bytes=48 * 1024))
        c = lg.counters()
        published = sorted(folder.glob("*.parquet"))
        assert published
        on_disk = sum(pq.ParquetFile(f).metadata.num_rows for f in published)
        df = ts.read_exposures(folder)
        assert df.attrs["damaged"] == []
        assert len(df) == on_disk == c.written > 0
        assert c.written + c.failed == 10_000
        assert sorted(df["unit"].str[5:].astype(int)) == df["unit"].str[5:].astype(int).tolist()
    assert "No space left on device" in caplog.text


# -- a removed folder --------------------------------------------------------------------------


@pytest.mark.parametrize("sink", sorted(SINKS))
def test_a_removed_folder_is_recreated_and_no_lost_record_counts_as_written(tmp_path, sink):
    folder = tmp_path / "exposures"
    lg = ts.ExposureLogger(SINKS[sink](folder))
    sp = ts.Splitter(CONFIG, exposures=lg)
    for i in range(1_000):
        sp.assign("e", f"user-{i}")
    assert lg.flush(30)
    shutil.rmtree(folder)
    for i in range(1_000, 2_000):
        sp.assign("e", f"user-{i}")
    lg.close()
    after = [f"user-{i}" for i in range(1_000, 2_000)]
    assert ts.read_exposures(folder)["unit"].tolist() == after
    c = lg.counters()
    if sink == "jsonl":
        # The first 1,000 were on disk (and counted) before the folder went.
        assert (c.written, c.failed) == (2_000, 0)
    else:
        # The first 1,000 were in a file still in progress: lost with it, and counted so.
        assert (c.written, c.failed) == (1_000, 1_000)


# -- damaged files -----------------------------------------------------------------------------


def test_read_exposures_skips_and_names_damaged_files(tmp_path):
    lg = ts.ExposureLogger(ts.ParquetSink(tmp_path))
    sp = ts.Splitter(CONFIG, exposures=lg)
    for i in range(100):
        sp.assign("e", f"user-{i}")
    lg.close()
    (good,) = tmp_path.glob("*.parquet")
    damaged = tmp_path / "exposures-damaged.parquet"
    damaged.write_bytes(good.read_bytes()[:-20])  # the footer cut short
    half = tmp_path / "exposures-half.jsonl"
    half.write_text('{"timestamp":"2026-01-01T00:00:00+00:00","unit":"user-x","exp')
    with pytest.warns(UserWarning) as caught:
        df = ts.read_exposures(tmp_path)
    said = " ".join(str(w.message) for w in caught)
    assert damaged.name in said and half.name in said
    assert df["unit"].tolist() == [f"user-{i}" for i in range(100)]
    assert sorted(Path(p).name for p in df.attrs["damaged"]) == [damaged.name, half.name]
    with pytest.raises(ts.Error, match=re.escape(half.name)):
        ts.read_exposures(tmp_path, errors="raise")
    half.unlink()
    with pytest.raises(ts.Error, match=re.escape(damaged.name)):
        ts.read_exposures(tmp_path, errors="raise")


# -- any batch, any bad records ----------------------------------------------------------------

GOOD_ROW = (1_700_000_000_000_000, "u", "e", "a", 7, "assigned", "v1", 0.5, None, None, None, False)
BAD_FIELDS = st.sampled_from(
    [
        ("attributes", {"k": "x\ud800"}),
        ("attributes", {"k": {1: "a", "b": 2}}),
        ("attributes", {"k": Opaque()}),
        ("request_id", "r\udc00"),
        ("request_id", 3.5),
        ("unit", "u\ud801"),
        ("arm", None),
        ("bucket", "7"),
    ]
)
FIELD = {"unit": 1, "arm": 3, "bucket": 4, "attributes": 8, "request_id": 9}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.one_of(st.none(), BAD_FIELDS), min_size=1, max_size=60),
    sink=st.sampled_from(sorted(SINKS)),
)
def test_random_bad_records_leave_exactly_the_good_ones_in_order(kinds, sink):
    rows, good = [], []
    for i, kind in enumerate(kinds):
        row = [*GOOD_ROW, None]
        row[1] = f"unit-{i}"
        row[8] = {"i": i}
        if kind is None:
            good.append(f"unit-{i}")
        else:
            row[FIELD[kind[0]]] = kind[1]
        rows.append(tuple(row))
    with tempfile.TemporaryDirectory() as folder:
        s = SINKS[sink](folder)
        report = s.write(ExposureBatch(rows))
        s.close()
        bad = [i for i, k in enumerate(kinds) if k is not None]
        assert (list(report.set_aside) if report else []) == bad
        df = ts.read_exposures(folder)
        assert df["unit"].tolist() == good
        assert [a["i"] for a in df["attributes"]] == [int(u[5:]) for u in good]


def test_a_malformed_decision_never_stops_the_writer(tmp_path, caplog):
    from collections import namedtuple

    from trafficsplit.telemetry.records import ExposureInfo

    Decision = namedtuple("Decision", "arm reason bucket arm_index")
    info = ExposureInfo("e", "v1", ts.Experiment("e", {"a": 50, "b": 50}))
    lg = ts.ExposureLogger(ts.JsonlSink(tmp_path))
    with caplog.at_level(logging.ERROR, logger="trafficsplit"):
        for i in range(10):
            arm_index = 9 if i == 4 else i % 2  # no arm 9: its probability cannot be found
            lg.log(
                1_700_000_000_000_000,
                f"user-{i}",
                info,
                Decision("ab"[i % 2], "assigned", i, arm_index),
            )
        assert lg.flush(10)
        lg.log(1_700_000_000_000_000, "user-10", info, Decision("a", "assigned", 10, 0))
        lg.close()
    units = ts.read_exposures(tmp_path)["unit"].tolist()
    assert units == [f"user-{i}" for i in range(11) if i != 4]
    c = lg.counters()
    assert (c.written, c.set_aside) == (10, 1)
    assert lg.set_aside_records()[0].error == "IndexError"
    assert "user-" not in caplog.text
