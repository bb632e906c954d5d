"""Backfills: ``trafficsplit.backfill`` and ``trafficsplit assign`` stream a table through the
servers' precedence and write Parquet. Every row is compared with ``Splitter.assign_frame`` on
pandas (another input path), the summary with counts of the written file and ``stats.srm``; every
failure leaves nothing behind, the previous output included."""

from __future__ import annotations

import datetime as dt
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit import cli, stats
from trafficsplit._frames import arrow_override_rows
from trafficsplit._shared.keys import unit_key_or_none

from conftest import DATA

EXAMPLE = DATA / "config" / "example.yaml"
KEYS = ["ranker-v2", "search-ui", "reranker-canary", "serving-stack"]
UTC = dt.UTC


def _users(n: int, seed: int = 7, ints: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids: Any
    if ints:
        ids = pd.array(rng.integers(-(2**62), 2**62, n), dtype="Int64")
        ids[rng.random(n) < 0.01] = pd.NA
        ids[3] = 42  # an override given as an integer in the configuration
    else:
        ids = np.array([f"user-{i}" for i in rng.permutation(n * 3)[:n]], dtype=object)
        ids[rng.random(n) < 0.01] = None
        ids[3] = "qa-user-1"  # an override
    start = dt.datetime(2026, 10, 25, tzinfo=UTC).timestamp()
    end = dt.datetime(2026, 11, 25, tzinfo=UTC).timestamp()
    seconds = rng.uniform(start, end, n).astype("int64")
    return pd.DataFrame(
        {
            "user_id": ids,
            "country": rng.choice(np.array(["US", "CA", "DE", None], dtype=object), n),
            "ts": pd.to_datetime(seconds, unit="s", utc=True),
            "spend": rng.gamma(2.0, 3.0, n),
        }
    )


def _reference(df: pd.DataFrame, at_column: str | None = "ts") -> pd.DataFrame:
    return ts.Splitter(ts.load_config(EXAMPLE)).assign_frame(df, "user_id", at_column=at_column)


def _same(out: pa.Table, ref: pd.DataFrame, keys: list[str] = KEYS) -> None:
    got = out.to_pandas()
    assert len(got) == len(ref)
    for key in keys:
        a = got[key].astype(object).where(got[key].notna(), None).tolist()
        b = ref[key].astype(object).where(ref[key].notna(), None).tolist()
        assert a == b, key
        assert (
            got[f"{key}_reason"].astype(str).tolist() == ref[f"{key}_reason"].astype(str).tolist()
        )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("ints", [False, True], ids=["text ids", "int64 ids"])
def test_every_row_as_assign_frame_across_batches_and_files(tmp_path: Path, ints: bool) -> None:
    df = _users(30_000, ints=ints)
    folder = tmp_path / "users"
    folder.mkdir()
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, start in enumerate(range(0, len(df), 7_000)):  # five files of a dataset
        pq.write_table(table.slice(start, 7_000), folder / f"part-{i}.parquet")
    seen: list[ts.BackfillProgress] = []
    summary = ts.backfill(
        EXAMPLE,
        folder,
        tmp_path / "out.parquet",
        "user_id",
        at_column="ts",
        batch_rows=4_096,
        progress=seen.append,
    )
    out = pq.read_table(tmp_path / "out.parquet")
    # the dataset's files are read in name order, rows in file order
    ref = _reference(df)
    _same(out, ref)
    assert out.column_names[:2] == ["user_id", "ts"]
    assert summary.rows == len(df) == seen[-1].rows and seen[-1].total == len(df)
    assert len(seen) >= len(df) // 4_096 and [p.rows for p in seen] == sorted(p.rows for p in seen)
    # buckets: those of Splitter.assign_columns, null exactly where the unit is missing
    cols = ts.Splitter(ts.load_config(EXAMPLE)).assign_columns(df, "user_id", at_column="ts")
    missing = df["user_id"].isna().to_numpy()
    for key in KEYS:
        bucket = out.column(f"{key}_bucket").to_numpy(zero_copy_only=False)
        assert np.array_equal(np.isnan(bucket), missing)
        assert np.array_equal(bucket[~missing].astype(np.int64), cols[key].bucket[~missing])
    assert _leftovers(tmp_path) == []


def test_summary_counts_and_sample_ratio_check_follow_the_history(tmp_path: Path) -> None:
    """ranker-v2 moved from 90/10 to 50/50 on 2026-11-15: the expected shares are each row's
    allocation, and the chi-square is the one stats.srm gives for those expected counts."""
    df = _users(40_000)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    s = ts.backfill(
        EXAMPLE, tmp_path / "in.parquet", tmp_path / "o.parquet", "user_id", at_column="ts"
    )
    got = pq.read_table(tmp_path / "o.parquet").to_pandas()
    for key in KEYS:
        t = s.experiments[key]
        arms = got[key].value_counts()
        assert t.counts == {a: int(arms.get(a, 0)) for a in t.counts}
        reasons = got[f"{key}_reason"].value_counts()
        assert t.reasons == {r: int(reasons.get(r, 0)) for r in ts.REASONS}
    t = s.experiments["ranker-v2"]
    rows = got[got["ranker-v2_reason"] == "assigned"]
    late = rows["ts"] >= pd.Timestamp("2026-11-15", tz="UTC")
    expected = {
        "control": 0.9 * (~late).sum() + 0.5 * late.sum(),
        "treatment": 0.1 * (~late).sum() + 0.5 * late.sum(),
    }
    total = sum(expected.values())
    assert t.expected == pytest.approx({a: v / total for a, v in expected.items()}, rel=1e-12)
    observed = rows["ranker-v2"].value_counts()
    ref = stats.srm([observed["control"], observed["treatment"]], list(expected.values()))
    assert t.srm.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert t.srm.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert not s.mismatch
    assert s.experiments["serving-stack"].srm is None  # one arm with a share: nothing to check
    text = str(s)
    assert text.splitlines()[0].startswith("assigned 40,000 rows to 4 experiments in ")
    assert "sample-ratio check: chi-square" in text


def test_duplicated_units_show_as_a_sample_ratio_mismatch(tmp_path: Path) -> None:
    """A table where one control unit appears 3,000 times: the rows are right (each is what the
    server gives) but the counts are not a random split, and the summary says so."""
    exp = {"key": "e", "arms": {"control": 50, "treatment": 50}}
    config = {"experiments": [exp]}
    control = next(
        u
        for u in (f"u{i}" for i in range(100))
        if ts.Experiment("e", {"control": 50, "treatment": 50}).assign(u).arm == "control"
    )
    ids = [f"id-{i}" for i in range(20_000)] + [control] * 3_000
    pq.write_table(pa.table({"user_id": ids}), tmp_path / "in.parquet")
    s = ts.backfill(config, tmp_path / "in.parquet", tmp_path / "o.parquet", "user_id")
    assert s.mismatch and s.experiments["e"].srm.pvalue < 1e-6
    assert "MISMATCH" in str(s)


def test_csv_ids_are_text_as_written_and_keep_star(tmp_path: Path) -> None:
    """'007' and '7' are two units in CSV as in the contract; an integer-looking column is not
    parsed as integers."""
    ids = ["007", "7", "42", "qa-user-1", "", "user-9"]
    (tmp_path / "in.csv").write_text(
        "user_id,country,ts\n" + "".join(f"{u},US,2026-11-18T12:00:00Z\n" for u in ids),
        encoding="utf-8",
    )
    s = ts.backfill(
        EXAMPLE, tmp_path / "in.csv", tmp_path / "o.parquet", "user_id", at_column="ts", keep="*"
    )
    out = pq.read_table(tmp_path / "o.parquet")
    assert out.column_names[:3] == ["user_id", "country", "ts"]
    assert out.column("user_id").to_pylist() == ["007", "7", "42", "qa-user-1", None, "user-9"]
    df = pd.DataFrame(
        {
            "user_id": ["007", "7", "42", "qa-user-1", None, "user-9"],
            "country": ["US"] * 6,
            "ts": pd.to_datetime(["2026-11-18T12:00:00Z"] * 6, utc=True),
        }
    )
    _same(out, _reference(df))
    buckets = out.column("search-ui_bucket").to_pylist()
    assert buckets[0] != buckets[1]  # '007' is not 7
    assert out.column("ranker-v2_reason").to_pylist()[2:4] == ["override", "override"]
    assert s.rows == 6 and s.experiments["ranker-v2"].reasons["missing_unit"] == 1


def test_one_time_for_every_row_and_exposures(tmp_path: Path) -> None:
    df = _users(5_000).drop(columns=["ts"])
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    at = "2026-11-10T00:00:00Z"
    s = ts.backfill(
        EXAMPLE,
        tmp_path / "in.parquet",
        tmp_path / "o.parquet",
        "user_id",
        at=at,
        experiments=["ranker-v2", "search-ui"],
        exposures=tmp_path / "exposures",
        batch_rows=1_000,
    )
    out = pq.read_table(tmp_path / "o.parquet")
    # 2026-11-10 is before ranker-v2 moved from 90/10 to 50/50
    assert s.experiments["ranker-v2"].expected == pytest.approx({"control": 0.9, "treatment": 0.1})
    ref = df.assign(ts=pd.Timestamp(at))
    _same(out, _reference(ref), ["ranker-v2", "search-ui"])
    assert out.column_names == ["user_id"] + [
        f"{k}{s}" for k in ("ranker-v2", "search-ui") for s in ("", "_bucket", "_reason")
    ]
    records = ts.read_exposures(tmp_path / "exposures")
    with_arm = sum(
        int(out.column(k).is_valid().to_numpy(zero_copy_only=False).sum())
        for k in ("ranker-v2", "search-ui")
    )
    assert s.exposures == with_arm == len(records)
    got = records[["experiment", "unit", "arm"]].set_axis(["e", "u", "a"], axis=1)
    got = got.astype({"e": str, "u": str, "a": str})
    want = pd.concat(
        [
            pd.DataFrame(
                {"e": k, "u": out.column("user_id").to_pylist(), "a": out.column(k).to_pylist()}
            ).dropna()
            for k in ("ranker-v2", "search-ui")
        ]
    )
    key = ["e", "u", "a"]
    assert (
        got.sort_values(key)
        .reset_index(drop=True)
        .equals(want.sort_values(key).reset_index(drop=True))
    )
    assert [p.name for p in (tmp_path / "exposures").iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"unit": "uid"},
            ts.ArgumentError,
            "no column 'uid' (the unit column); columns: user_id, country, ts, spend",
        ),
        (
            {"unit": "spend"},
            ts.ArgumentError,
            "column 'spend' (the unit column) is double; expected text, integers or bytes",
        ),
        ({"at_column": "country", "unit": "user_id"}, None, None),
        ({"at_column": "spend"}, ts.ArgumentError, "column 'spend' (the time column) is double"),
        (
            {"experiments": ["nope"]},
            ts.ArgumentError,
            "no experiment 'nope' in the configuration; experiments: ranker-v2, search-ui",
        ),
        (
            {"keep": ["user_id", "ranker-v2"]},
            ts.ArgumentError,
            "no column 'ranker-v2' (a column to keep)",
        ),
        ({"attributes": ["tier"]}, ts.ArgumentError, "no column 'tier' (a targeting attribute)"),
        ({"input": "missing.parquet"}, FileNotFoundError, "no such file or folder"),
        ({"input": "garbage.parquet"}, ts.ArgumentError, "could not be read as parquet"),
        ({"input": "in.txt"}, ts.ArgumentError, "cannot tell the format from the name"),
        ({"config": {"experiments": [{"key": "e", "arms": {"a": 60}}]}}, ts.ConfigError, "weights"),
        ({"output": "nowhere/o.parquet"}, FileNotFoundError, "the output's folder does not exist"),
        (
            {"at": "2026-11-01", "at_column": "ts"},
            ts.ArgumentError,
            "give at or at_column, not both",
        ),
        ({"batch_rows": 0}, ts.ArgumentError, "batch_rows must be a positive integer"),
    ],
)
def test_errors_name_the_file_and_column_and_write_nothing(
    tmp_path: Path, change: dict[str, Any], error: type[Exception] | None, message: str | None
) -> None:
    df = _users(500)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "in.txt").write_text("user_id\n1\n")
    out = tmp_path / "o.parquet"
    out.write_bytes(b"the previous output")
    kwargs: dict[str, Any] = {
        "config": EXAMPLE,
        "input": tmp_path / "in.parquet",
        "output": out,
        "unit": "user_id",
        "at_column": "ts",
        "experiments": ["ranker-v2", "search-ui"],
    }
    kwargs.update(change)
    if isinstance(kwargs["input"], str):
        kwargs["input"] = tmp_path / kwargs["input"]
    if isinstance(kwargs["output"], str):
        kwargs["output"] = tmp_path / kwargs["output"]
    if "at" in change and "at_column" in change:
        pass
    elif "at" in change:
        kwargs.pop("at_column")
    if error is None:  # a text time column is accepted, and a bad time in it is an error
        with pytest.raises(ts.ConfigError):
            ts.backfill(**kwargs)
    else:
        with pytest.raises(error, match=message and __import__("re").escape(message)):
            ts.backfill(**kwargs)
    assert out.read_bytes() == b"the previous output"
    assert _leftovers(tmp_path) == []


def test_an_interrupted_backfill_leaves_the_previous_output(tmp_path: Path) -> None:
    pq.write_table(
        pa.Table.from_pandas(_users(20_000), preserve_index=False), tmp_path / "in.parquet"
    )
    out = tmp_path / "o.parquet"
    out.write_bytes(b"the previous output")
    (tmp_path / "exposures").mkdir()

    def stop(p: ts.BackfillProgress) -> None:
        if p.rows >= 5_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ts.backfill(
            EXAMPLE,
            tmp_path / "in.parquet",
            out,
            "user_id",
            batch_rows=2_500,
            exposures=tmp_path / "exposures",
            progress=stop,
        )
    assert out.read_bytes() == b"the previous output"
    assert _leftovers(tmp_path) == [] and list((tmp_path / "exposures").iterdir()) == []


def test_a_unit_the_contract_refuses_stops_the_backfill(tmp_path: Path) -> None:
    """A lone surrogate cannot be in Parquet text; bytes ids are accepted as in the contract."""
    pq.write_table(pa.table({"u": pa.array([b"\x00\xff", b"abc", None])}), tmp_path / "b.parquet")
    ts.backfill(
        {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]},
        tmp_path / "b.parquet",
        tmp_path / "o.parquet",
        "u",
    )
    got = pq.read_table(tmp_path / "o.parquet").column("e_bucket").to_pylist()
    e = ts.Experiment("e", {"a": 50, "b": 50})
    assert got == [e.assign(b"\x00\xff").bucket, e.assign(b"abc").bucket, None]


# -- overrides in Arrow columns ------------------------------------------------------------------

_IDS = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=30).map(
        lambda v: pa.chunked_array([pa.array(v, pa.int64())])
    ),
    st.lists(st.one_of(st.none(), st.integers(-128, 127)), max_size=30).map(
        lambda v: pa.chunked_array([pa.array(v, pa.int8())])
    ),
    st.lists(
        st.one_of(st.none(), st.sampled_from(["7", "007", "qa", "é", "-3", "x"])), max_size=30
    ).map(lambda v: pa.chunked_array([pa.array(v, pa.string())])),
    st.lists(st.one_of(st.none(), st.binary(max_size=3)), max_size=30).map(
        lambda v: pa.chunked_array([pa.array(v, pa.binary())])
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    _IDS,
    st.sets(
        st.sampled_from(
            ["7", "007", "-3", "qa", "é", "b:00", "b:", "b:zz", "127", "128", "9223372036854775807"]
        )
    ),
)
def test_arrow_override_rows_match_keying_every_row(units: Any, keys: set[str]) -> None:
    overrides = {k: "arm" for k in keys}
    values = units.to_pylist()
    extra = [v for v in values if v is not None and unit_key_or_none(v) is not None][:2]
    for v in extra:  # some overrides that surely occur
        overrides[str(unit_key_or_none(v))] = "arm"
    want = [
        (i, unit_key_or_none(v)) for i, v in enumerate(values) if unit_key_or_none(v) in overrides
    ]
    assert arrow_override_rows(units, overrides) == want


# -- the command line ----------------------------------------------------------------------------


def _cli(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trafficsplit", "assign", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_the_same_rows_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _users(12_000)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    code = cli.main(
        [
            "assign",
            "--config",
            str(EXAMPLE),
            "--input",
            str(tmp_path / "in.parquet"),
            "--unit",
            "user_id",
            "--output",
            str(tmp_path / "o.parquet"),
            "--at-column",
            "ts",
            "--batch-rows",
            "5000",
            "--progress-every",
            "0",
            "--keep",
            "user_id,ts,spend",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    table = pq.read_table(tmp_path / "o.parquet")
    _same(table, _reference(df))
    assert table.column_names[:3] == ["user_id", "ts", "spend"]
    assert out.startswith("assigned 12,000 rows to 4 experiments in ")
    progress = [line for line in err.splitlines() if line.startswith("trafficsplit assign: ")]
    assert [p.split(" rows")[0] for p in progress] == [
        "trafficsplit assign: 5,000",
        "trafficsplit assign: 10,000",
        "trafficsplit assign: 12,000",
    ]
    assert "of 12,000 (100%)" in progress[-1]
    counts = table.column("search-ui").to_pandas().value_counts()
    assert f"  control{counts['control']:>27,}" in out


def test_cli_json_quiet_and_errors(tmp_path: Path) -> None:
    df = _users(3_000)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in.parquet")
    base = ["--config", EXAMPLE, "--input", tmp_path / "in.parquet", "--unit", "user_id"]
    r = _cli(
        *base, "--output", tmp_path / "o.parquet", "--quiet", "--json", "--experiments", "search-ui"
    )
    assert r.returncode == 0 and r.stderr == ""
    import json

    doc = json.loads(r.stdout)
    counts = pq.read_table(tmp_path / "o.parquet").column("search-ui").to_pandas().value_counts()
    assert doc["rows"] == 3_000 and doc["experiments"]["search-ui"]["counts"] == {
        a: int(counts[a]) for a in ("control", "treatment")
    }
    # errors: one line, exit 2, nothing written
    (tmp_path / "bad.yaml").write_text("experiments:\n  - key: e\n    arms: {a: 70}\n")
    for args, message in [
        (["--unit", "uid"], "in.parquet: no column 'uid' (the unit column); columns: user_id"),
        (["--input", tmp_path / "none.parquet"], "none.parquet: no such file or folder"),
        (["--config", tmp_path / "bad.yaml"], "bad.yaml: experiments[0].arms"),
        (["--experiments", "a,b"], "no experiment 'a', 'b' in the configuration"),
        (["--unit", "spend"], "column 'spend' (the unit column) is double"),
    ]:
        argv = [*base, "--output", tmp_path / "x.parquet"]
        for i in range(0, len(args), 2):
            j = argv.index(args[i]) if args[i] in argv else None
            if j is None:
                argv += args[i : i + 2]
            else:
                argv[j + 1] = args[i + 1]
        r = _cli(*argv)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("trafficsplit assign: ")
        assert not (tmp_path / "x.parquet").exists() and _leftovers(tmp_path) == []
    r = _cli("--config", EXAMPLE)
    assert (
        r.returncode == 2
        and "the following arguments are required: --input, --unit, --output" in r.stderr
    )
    r = _cli(*base, "--output", tmp_path / "y.parquet", "--at", "2026-11-01", "--at-column", "ts")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_cli_help_teaches_and_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom trafficsplit.cli import main\n"
        "try:\n    main(['assign', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pyarrow', 'pandas', 'tqdm') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in r.stdout, r.stdout
    for text in (
        "--at-column COLUMN",
        "examples:",
        "trafficsplit assign --config experiments.yaml",
        "130/143 interrupted",
    ):
        assert text in r.stdout


def test_cli_killed_midway_leaves_no_file(tmp_path: Path) -> None:
    """SIGTERM while batches are being written: exit 143, the temporary file removed."""
    n = 400_000
    pq.write_table(
        pa.table({"user_id": pa.array([f"u{i}" for i in range(n)])}), tmp_path / "in.parquet"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trafficsplit",
            "assign",
            "--config",
            str(EXAMPLE),
            "--input",
            str(tmp_path / "in.parquet"),
            "--unit",
            "user_id",
            "--output",
            str(tmp_path / "o.parquet"),
            "--batch-rows",
            "2000",
            "--progress-every",
            "0",
            "--threads",
            "1",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first batch is done: the temporary file exists
    assert line.startswith("trafficsplit assign: 2,000 rows"), line
    assert len(_leftovers(tmp_path)) == 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted; nothing written" in err
    assert not (tmp_path / "o.parquet").exists() and _leftovers(tmp_path) == []


def test_cli_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"user_id": pa.array([f"u{i}" for i in range(50_000)])}), tmp_path / "in.parquet"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trafficsplit",
            "assign",
            "--config",
            str(EXAMPLE),
            "--input",
            str(tmp_path / "in.parquet"),
            "--unit",
            "user_id",
            "--output",
            str(tmp_path / "o.parquet"),
            "--batch-rows",
            "10000",
        ],
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    drawn = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, drawn
    assert "50.0k/50.0k" in drawn and "100%" in drawn and "rows/s" in drawn, drawn


def test_the_config_used_to_write_is_the_config_read(tmp_path: Path) -> None:
    """Folders of configuration merge as elsewhere: one experiment per file."""
    conf = tmp_path / "conf"
    conf.mkdir()
    for key in ("a", "b"):
        (conf / f"{key}.yaml").write_text(
            yaml.safe_dump({"experiments": [{"key": key, "arms": {"x": 30, "y": 70}}]})
        )
    pacsv.write_csv(
        pa.table({"user_id": pa.array([str(i) for i in range(1000)])}), tmp_path / "in.csv"
    )
    s = ts.backfill(conf, tmp_path / "in.csv", tmp_path / "o.parquet", "user_id")
    out = pq.read_table(tmp_path / "o.parquet")
    for key in ("a", "b"):
        e = ts.Experiment(key, {"x": 30, "y": 70})
        assert (
            out.column(key).to_pylist()
            == e.assign_batch([str(i) for i in range(1000)]).arm.tolist()
        )
        assert s.experiments[key].expected == pytest.approx({"x": 0.3, "y": 0.7})


def _codecs(path: Path) -> dict[str, str]:
    meta = pq.ParquetFile(path).metadata.row_group(0)
    return {
        meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)
    }


def test_auto_codec_leaves_random_ids_uncompressed_and_compresses_the_rest(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = [bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex() for _ in range(20_000)]
    country = rng.choice(["US", "CA", "DE"], 20_000).tolist()
    pq.write_table(pa.table({"user_id": ids, "country": country}), tmp_path / "in.parquet")
    config = {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}
    ts.backfill(config, tmp_path / "in.parquet", tmp_path / "auto.parquet", "user_id", keep="*")
    snappy = pa.compress(pa.py_buffer("".join(ids).encode()), codec="snappy", asbytes=True)
    assert len(snappy) / len("".join(ids)) > 0.85  # what makes auto leave it alone
    # snappy for the kept column it shrinks; the random buckets and the bit-packed arm and
    # reason codes gain nothing from it
    assert _codecs(tmp_path / "auto.parquet") == {
        "user_id": "UNCOMPRESSED",
        "country": "SNAPPY",
        "e": "UNCOMPRESSED",
        "e_bucket": "UNCOMPRESSED",
        "e_reason": "UNCOMPRESSED",
    }
    ts.backfill(
        config, tmp_path / "in.parquet", tmp_path / "z.parquet", "user_id", compression="zstd"
    )
    assert set(_codecs(tmp_path / "z.parquet").values()) == {"ZSTD"}
    with pytest.raises(ts.ArgumentError, match="compression must be one of auto, snappy"):
        ts.backfill(
            config, tmp_path / "in.parquet", tmp_path / "x.parquet", "user_id", compression="lzo"
        )
    # statistics: none for the text ids, kept for nothing else here but the input's columns
    meta = pq.ParquetFile(tmp_path / "auto.parquet").metadata.row_group(0)
    assert [meta.column(i).is_stats_set for i in range(meta.num_columns)] == [False] * 5


def test_an_empty_input_writes_an_empty_file_with_the_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"user_id": pa.array([], pa.string())}), tmp_path / "in.parquet")
    s = ts.backfill(
        EXAMPLE,
        tmp_path / "in.parquet",
        tmp_path / "o.parquet",
        "user_id",
        experiments=["search-ui"],
    )
    out = pq.read_table(tmp_path / "o.parquet")
    assert out.num_rows == 0 and out.column_names == [
        "user_id",
        "search-ui",
        "search-ui_bucket",
        "search-ui_reason",
    ]
    assert s.rows == 0 and s.experiments["search-ui"].srm is None


def test_row_groups_of_any_size_read_ahead_in_order(tmp_path: Path) -> None:
    """Runs of row groups are read on two threads and put back in order: row groups smaller
    and larger than a batch, a file of one row, a corrupt file that stops the run."""
    df = _users(12_000, seed=5)
    table = pa.Table.from_pandas(df, preserve_index=False)
    folder = tmp_path / "users"
    folder.mkdir()
    with pq.ParquetWriter(folder / "a.parquet", table.schema) as w:
        start = 0
        for size in (1_000, 3_000, 50, 7_000, 1, 949):
            w.write_table(table.slice(start, size), row_group_size=size)
            start += size
    assert pq.ParquetFile(folder / "a.parquet").metadata.num_row_groups == 6
    pq.write_table(table.slice(start, 1), folder / "b.parquet")
    rest = table.slice(start + 1)
    pq.write_table(rest, folder / "c.parquet", row_group_size=999)
    seen: list[ts.BackfillProgress] = []
    ts.backfill(EXAMPLE, folder, tmp_path / "out.parquet", "user_id", at_column="ts",
                batch_rows=2_500, progress=seen.append)  # fmt: skip
    out = pq.read_table(tmp_path / "out.parquet")
    _same(out, _reference(df))
    assert out.column("user_id").to_pylist() == table.column("user_id").to_pylist()
    assert np.diff([0] + [p.rows for p in seen]).max() <= 2_500  # batches of at most batch_rows
    (folder / "b.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    with pytest.raises(ts.ArgumentError, match=r"b\.parquet: could not be read"):
        ts.backfill(EXAMPLE, folder, tmp_path / "out2.parquet", "user_id", batch_rows=2_500)
    assert not (tmp_path / "out2.parquet").exists() and _leftovers(tmp_path) == []
