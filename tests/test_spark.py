"""trafficsplit.spark on a real local Spark session (``local[2]``, one for the module, bound to
127.0.0.1): every row's arm, bucket and reason against ``Splitter.assign_frame`` and the scalar
``Splitter.assign``; Spark's per-arm sums against ``trafficsplit.sufficient_statistics`` and
``analyze`` on the unit rows; the errors; docs/spark.md's example; and (slow) executors that run
the built wheel from a fresh virtual environment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import trafficsplit as ts
from test_wheel import _clean_env, _new_venv, _run, wheel  # noqa: F401  (its cached wheel)
from trafficsplit import spark as ts_spark
from trafficsplit.config import as_snapshot

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "data" / "config" / "example.yaml"
JAVA = shutil.which("java") or (
    os.environ.get("JAVA_HOME") and shutil.which("java", path=f"{os.environ['JAVA_HOME']}/bin")
)

# pyspark's own notice about the pandas of the development environment
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)
NO_JAVA = "Spark needs Java, which is not installed (scripts/setup.sh installs it)"

SESSION = {
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


@pytest.fixture(scope="module")
def spark():
    """One local Spark session for the module; nothing listens beyond loopback. The Python
    workers run this interpreter, and this module's helper functions travel by value (the
    workers cannot import a test module)."""
    if not JAVA:
        pytest.skip(NO_JAVA)
    from pyspark import cloudpickle
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        mp.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.master("local[2]").appName("trafficsplit-tests")
        for key, value in SESSION.items():
            builder = builder.config(key, value)
        # Small Arrow batches, so that a task hands a worker several.
        builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            yield session
        finally:
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
            session.stop()


def test_the_module_imports_without_spark_and_its_calls_name_the_extra():
    """``import trafficsplit.spark`` loads neither pyspark, pyarrow nor pandas; without pyspark
    installed, its calls say which extra brings it."""
    code = """
import json, sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pyspark":
            raise ImportError(f"No module named {name!r}", name=name)

import trafficsplit.spark as ts_spark
loaded = sorted(m for m in ("pyspark", "pyarrow", "pandas") if m in sys.modules)
sys.meta_path.insert(0, Missing())
messages = []
for call in (lambda: ts_spark.assign(None, {}, "user_id"),
             lambda: ts_spark.sufficient_statistics(None, "arm", ["y"])):
    try:
        call()
    except ImportError as e:
        messages.append(str(e))
print(json.dumps([loaded, messages]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded, messages = json.loads(done.stdout)
    assert loaded == []
    assert messages == [
        "trafficsplit.spark.assign needs pyspark: pip install 'trafficsplit[spark]'",
        "trafficsplit.spark.sufficient_statistics needs pyspark: pip install 'trafficsplit[spark]'",
    ]


# -- data --------------------------------------------------------------------------------------


def _times(rng: np.random.Generator, n: int) -> pa.Array:
    """Times from before the example's first allocation to after its canary's last step."""
    start = dt.datetime(2026, 10, 25, tzinfo=dt.UTC)
    seconds = rng.integers(0, 45 * 86_400, n)
    micros = (int(start.timestamp()) + seconds) * 1_000_000
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def _users(n: int, ids: str, seed: int = 7) -> pa.Table:
    """``row``, ``user_id`` (strings or int64, every 37th NULL, the example's override ids
    among them), ``country`` (with NULLs) and ``t``."""
    rng = np.random.default_rng(seed)
    if ids == "string":
        values: list = [f"user-{i}" for i in range(n)]
        values[5] = "qa-user-1"
        values[6] = "42"
    else:
        values = [int(i) * 7919 for i in range(n)]
        values[6] = 42
        values[7] = -3
        values[8] = 2**62
    for i in range(0, n, 37):
        values[i] = None
    country = rng.choice(np.array(["US", "CA", "FR", None], dtype=object), n).tolist()
    return pa.table(
        {
            "row": pa.array(np.arange(n, dtype=np.int64)),
            "user_id": pa.array(values, pa.string() if ids == "string" else pa.int64()),
            "country": pa.array(country, pa.string()),
            "t": _times(rng, n),
        }
    )


def _collect(df) -> pa.Table:
    return df.toArrow().sort_by("row")


def _scalar(splitter: ts.Splitter, key: str, table: pa.Table, at: dt.datetime | None) -> list:
    """Each row through the scalar ``Splitter.assign`` (at ``at``, else at the row's ``t``):
    (arm, bucket, reason), the bucket None for a missing unit."""
    out = []
    for row in table.to_pylist():
        moment = row["t"] if at is None else at
        a = splitter.assign(key, row["user_id"], row, at=moment, log_exposure=False)
        out.append((a.arm, a.bucket if row["user_id"] is not None else None, a.reason))
    return out


def _check_against_one_machine(
    got: pa.Table,
    table: pa.Table,
    config,
    at_column: str | None,
    at: dt.datetime | None = None,
    experiments: list[str] | None = None,
) -> set[str]:
    """Every experiment's arm and reason equal ``assign_frame``'s, every (arm, bucket, reason)
    the scalar path's, and every bucket the spec's ``bucket(unit, arm salt)``. Returns the
    reasons seen."""
    splitter = ts.Splitter(as_snapshot(config))
    frame_input, frame_at = table, at_column
    if at_column is None:  # assign_frame has no single moment: the same one on every row
        times = pa.array([at] * table.num_rows, pa.timestamp("us"))
        frame_input, frame_at = table.append_column("at", times), "at"
    keys = experiments or list(splitter.snapshot.experiments)
    expected = splitter.assign_frame(frame_input, "user_id", keys, at_column=frame_at)
    units = table["user_id"].to_pylist()
    seen: set[str] = set()
    for key in keys:
        arm, bucket, reason = ts_spark.output_columns(key)
        assert got[arm].to_pylist() == expected[key].to_pylist(), key
        assert got[reason].to_pylist() == expected[f"{key}_reason"].to_pylist(), key
        triples = list(
            zip(got[arm].to_pylist(), got[bucket].to_pylist(), got[reason].to_pylist(), strict=True)
        )
        assert triples == _scalar(splitter, key, table, at), key
        exp = splitter.snapshot.experiments[key].experiment
        assert got[bucket].to_pylist() == [
            None if u is None else ts.bucket(u, exp.arm_salt, exp.buckets, exp.algorithm)
            for u in units
        ], key
        seen |= set(got[reason].to_pylist())
    # The input columns come back as they went in.
    for name in table.column_names:
        assert got[name].equals(table[name]), name
    return seen


# -- assign ------------------------------------------------------------------------------------


def test_string_ids_with_history_holdouts_layers_targeting_and_overrides(spark):
    table = _users(6000, "string")
    df = spark.createDataFrame(table).repartition(4)
    out = ts_spark.assign(df, EXAMPLE, "user_id", at_column="t")
    seen = _check_against_one_machine(_collect(out), table, EXAMPLE, "t")
    # The data reach every step of the precedence the example configures.
    assert {
        "assigned",
        "missing_unit",
        "override",
        "holdout",
        "layer_other",
        "targeting_miss",
        "not_exposed",
        "not_started",
    } <= seen


def test_int64_ids_and_schema(spark):
    table = _users(3000, "int64", seed=11)
    df = spark.createDataFrame(table)
    out = ts_spark.assign(df, EXAMPLE, "user_id", ["ranker-v2", "search-ui"], at_column="t")
    types = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert out.columns == [
        *table.column_names,
        "ranker-v2",
        "ranker-v2_bucket",
        "ranker-v2_reason",
        "search-ui",
        "search-ui_bucket",
        "search-ui_reason",
    ]
    assert [types["ranker-v2"], types["ranker-v2_bucket"], types["ranker-v2_reason"]] == [
        "string",
        "int",
        "string",
    ]
    got = _collect(out)
    _check_against_one_machine(got, table, EXAMPLE, "t", experiments=["ranker-v2", "search-ui"])
    # 42 is an override of the example, as an integer id as well as the text "42".
    assert got["ranker-v2_reason"][6].as_py() == "override"
    assert got["ranker-v2"][6].as_py() == "treatment"
    assert got["ranker-v2_reason"][0].as_py() == "missing_unit"


PEER_MODES = {
    "experiments": [
        {"key": "gb", "arms": {"a": 30, "b": 70}, "exposure": 0.6, "hashing": "growthbook-v2"},
        {"key": "un", "arms": {"a": 50, "b": 50}, "exposure": 0.3, "hashing": "unleash"},
        {"key": "fd", "arms": {"a": 10, "b": 90}, "hashing": {"mode": "flagd", "prefix": "p"}},
        {"key": "ld", "arms": {"a": 50, "b": 50}, "hashing": {"mode": "launchdarkly", "seed": 7}},
    ]
}


def test_peer_hashing_modes(spark):
    """Spark assigns in a peer mode exactly as one machine does, and as the peer would."""
    table = _users(4000, "string", seed=5)
    out = ts_spark.assign(spark.createDataFrame(table).repartition(3), PEER_MODES, "user_id")
    got = _collect(out)
    snapshot = as_snapshot(PEER_MODES)
    units = table["user_id"].to_pylist()
    for key in ("gb", "un", "fd", "ld"):
        exp = snapshot.experiments[key].experiment
        want = exp.assign_batch(units)
        arm, bucket, reason = ts_spark.output_columns(key)
        assert got[arm].to_pylist() == want.arm.tolist(), key
        assert got[bucket].to_pylist() == [
            None if u is None else int(b) for u, b in zip(units, want.bucket, strict=True)
        ], key
        assert got[reason].to_pylist() == want.to_pandas()["reason"].astype(str).tolist(), key
    # The peer's own arithmetic, for the flagd experiment (bucketBy = prefix + unit).
    for u, a in zip(units, got["fd"].to_pylist(), strict=True):
        if u is not None:
            bucket = (murmur3_unsigned(("p" + u).encode()) * 100) >> 32
            assert a == ("a" if bucket < 10 else "b")


def murmur3_unsigned(data: bytes) -> int:
    import mmh3

    return mmh3.hash(data, 0, signed=False)


def test_one_moment_for_every_row(spark):
    table = _users(2000, "string", seed=3)
    df = spark.createDataFrame(table.drop_columns(["t"]))
    moment = dt.datetime(2026, 11, 20, 6, 30)  # the canary's second step
    got = _collect(ts_spark.assign(df, EXAMPLE, "user_id", at="2026-11-20T06:30:00Z"))
    _check_against_one_machine(got, table.drop_columns(["t"]), EXAMPLE, None, moment)
    # Without at, the moment assign() was called on the driver: the same as now here, since the
    # example's schedule was over long before.
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    got = _collect(ts_spark.assign(df, EXAMPLE, "user_id"))
    _check_against_one_machine(got, table.drop_columns(["t"]), EXAMPLE, None, now)


TARGETED = {
    "experiments": [
        {
            "key": "onboarding",
            "targeting": 'tier == "premium" and semver(app_version) >= "2.3.0" and score > 0.5',
            "arms": {"control": 50, "guided": 30, "video": 20},
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-12-01T00:00:00Z",
        },
        {"key": "paused", "status": "stopped", "arms": {"a": 50, "b": 50}},
        {"key": "adults", "targeting": "age >= 18 and beta", "arms": {"off": 90, "on": 10}},
    ]
}


def test_targeting_reads_the_other_columns_and_times_bound_experiments(spark):
    rng = np.random.default_rng(5)
    n = 4000
    table = _users(n, "string", seed=5).append_column(
        "tier", pa.array(rng.choice(np.array(["free", "premium", None], dtype=object), n))
    )
    table = table.append_column(
        "app_version", pa.array(rng.choice(np.array(["2.2.9", "2.3.0", "2.10.0"]), n))
    )
    table = table.append_column("score", pa.array(rng.random(n)))
    age = pa.array(rng.integers(10, 40, n).astype(np.int32), mask=rng.random(n) < 0.1)
    table = table.append_column("age", age)
    table = table.append_column("beta", pa.array(rng.random(n) < 0.5))
    df = spark.createDataFrame(table)
    got = _collect(ts_spark.assign(df, TARGETED, "user_id", at_column="t"))
    seen = _check_against_one_machine(got, table, TARGETED, "t")
    assert {"assigned", "targeting_miss", "not_started", "stopped", "missing_unit"} <= seen
    assert {"guided", "video", "control"} <= set(got["onboarding"].to_pylist())


def test_existing_output_columns_are_replaced_in_place(spark):
    table = _users(500, "string")
    once = ts_spark.assign(spark.createDataFrame(table), EXAMPLE, "user_id", "search-ui", "t")
    twice = ts_spark.assign(once, EXAMPLE, "user_id", "search-ui", "t")
    assert twice.columns == once.columns
    assert _collect(twice).equals(_collect(once))


def _report(batches):
    """Per task: this Python worker's pid and what trafficsplit.spark counted in it."""
    import os

    import trafficsplit.spark as module

    for _ in batches:
        pass
    yield pa.RecordBatch.from_pylist(
        [
            {"pid": os.getpid(), "digest": d, "compiled": c, "batches": module._batches[d]}
            for d, c in module._compilations.items()
        ],
        schema=pa.schema(
            [
                ("pid", pa.int64()),
                ("digest", pa.string()),
                ("compiled", pa.int64()),
                ("batches", pa.int64()),
            ]
        ),
    )


def test_each_python_worker_compiles_the_configuration_once(spark):
    # A configuration no other test uses, so that its digest counts this test's work alone.
    config = {"experiments": [{"key": f"fresh-{uuid.uuid4().hex}", "arms": {"a": 50, "b": 50}}]}
    digest = hashlib.sha256(as_snapshot(config).to_json().encode()).hexdigest()
    # 16 tasks of one Arrow batch each, on two cores: more tasks than Python workers.
    df = spark.createDataFrame(_users(8000, "string")).repartition(16)
    assert ts_spark.assign(df, config, "user_id").count() == 8000
    # Spark hands tasks to its idle workers in turn, so these 32 tasks visit every one.
    reports = spark.range(0, 32, numPartitions=32).mapInArrow(
        _report, "pid long, digest string, compiled long, batches long"
    )
    per_worker = {r.pid: r for r in reports.collect() if r.digest == digest}
    assert per_worker, "no worker of the second job had assigned rows"
    assert sum(r.batches for r in per_worker.values()) <= 16
    # Each worker compiled the configuration once, and kept it for its later tasks.
    assert all(r.compiled == 1 for r in per_worker.values())
    assert max(r.batches for r in per_worker.values()) >= 2


def test_null_times_fail_on_the_executor_with_the_row(spark):
    from pyspark.errors import PythonException

    table = _users(100, "string")
    times = table["t"].to_pylist()
    times[10] = None
    table = table.set_column(3, "t", pa.array(times, pa.timestamp("us", tz="UTC")))
    out = ts_spark.assign(spark.createDataFrame(table).coalesce(1), EXAMPLE, "user_id", None, "t")
    with pytest.raises(PythonException, match=r"at is missing \(NaT\) at row 10"):
        out.collect()


def test_arguments_are_checked_on_the_driver(spark):
    df = spark.createDataFrame(_users(10, "string"))
    fmt = ts.ArgumentError
    with pytest.raises(fmt, match=r"unit_column 'uid' is not a column.*row, user_id, country, t"):
        ts_spark.assign(df, EXAMPLE, "uid")
    with pytest.raises(fmt, match=r"unknown experiment\(s\) 'nope'.*ranker-v2, search-ui"):
        ts_spark.assign(df, EXAMPLE, "user_id", ["search-ui", "nope"])
    with pytest.raises(fmt, match="at_column 'when' is not a column"):
        ts_spark.assign(df, EXAMPLE, "user_id", at_column="when")
    with pytest.raises(fmt, match="at_column 'country' has Spark type string; expected a time"):
        ts_spark.assign(df, EXAMPLE, "user_id", at_column="country")
    with pytest.raises(fmt, match="give at or at_column, not both"):
        ts_spark.assign(df, EXAMPLE, "user_id", at_column="t", at="2026-11-01")
    with pytest.raises(fmt, match="lists a key twice"):
        ts_spark.assign(df, EXAMPLE, "user_id", ["search-ui", "search-ui"])
    with pytest.raises(fmt, match="df must be a Spark DataFrame, got Table"):
        ts_spark.assign(_users(10, "string"), EXAMPLE, "user_id")
    with pytest.raises(fmt, match="config: expected a Snapshot, a Splitter"):
        ts_spark.assign(df, 42, "user_id")
    with pytest.raises(ts.ConfigError, match="at = 'soon' is not an ISO-8601 time"):
        ts_spark.assign(df, EXAMPLE, "user_id", at="soon")
    doubles = spark.createDataFrame(pd.DataFrame({"user_id": [1.5, 2.5]}))
    with pytest.raises(ts.UnitTypeError, match="unit_column 'user_id' has Spark type double"):
        ts_spark.assign(doubles, EXAMPLE, "user_id")


# -- sufficient statistics -----------------------------------------------------------------------


def _outcomes(n: int = 30_000, seed: int = 2027) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(np.array(["control", "treatment", "video", None], dtype=object), n,
                     p=[0.45, 0.3, 0.2, 0.05])  # fmt: skip
    lift = np.select([arm == "treatment", arm == "video"], [0.4, -0.2], 0.0)
    minutes_pre = rng.gamma(2.0, 10.0, n)
    sessions = rng.integers(1, 20, n)
    return pd.DataFrame(
        {
            "arm": arm,
            "converted": rng.random(n) < 0.1 + 0.01 * lift,
            "minutes": 0.8 * minutes_pre + rng.normal(5.0 + lift, 4.0),
            "minutes_pre": minutes_pre,
            "sessions": sessions,
            "clicks": rng.binomial(sessions, 0.3),
            "latency_ms": rng.normal(120.0 + lift, 15.0),
        }
    )


ANALYSIS = {
    "metrics": ["converted", "minutes"],
    "covariates": {"minutes": "minutes_pre"},
    "ratio_metrics": {"ctr": ("clicks", "sessions")},
    "guardrails": {"latency_ms": ts.Guardrail(0.05)},
}


def _close_frames(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for c in want.columns:
        if pd.api.types.is_numeric_dtype(want[c]) and not pd.api.types.is_bool_dtype(want[c]):
            np.testing.assert_allclose(
                got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-9, atol=0, err_msg=c
            )
        else:
            assert got[c].tolist() == want[c].tolist(), c


def test_sums_and_analysis_equal_the_pandas_path(spark):
    units = _outcomes()
    df = spark.createDataFrame(pa.Table.from_pandas(units, preserve_index=False)).repartition(3)
    table = ts_spark.sufficient_statistics(df, "arm", **ANALYSIS)
    want = ts.sufficient_statistics(units, "arm", **ANALYSIS)
    want = want.sort_values("arm", ignore_index=True)
    _close_frames(table, want)
    assert table["n"].tolist() == units["arm"].value_counts().sort_index().tolist()

    from_spark = ts.analyze(table, "arm", **ANALYSIS).summary()
    from_units = ts.analyze(units, "arm", **ANALYSIS).summary()
    key = ["metric", "arm"]
    _close_frames(
        from_spark.sort_values(key, ignore_index=True),
        from_units.sort_values(key, ignore_index=True),
    )


def test_sums_of_integer_decimal_and_boolean_columns(spark):
    units = pd.DataFrame(
        {
            "arm": ["control", "treatment"] * 50,
            "orders": np.arange(100, dtype=np.int32) % 7,
            "paid": np.arange(100) % 3 == 0,
        }
    )
    df = spark.createDataFrame(units).withColumn("price", ts_spark_col("orders * 1.25"))
    units["price"] = units["orders"] * 1.25
    got = ts_spark.sufficient_statistics(df, "arm", ["orders", "paid", "price"])
    assert dict(zip(df.schema.names, [f.dataType.simpleString() for f in df.schema], strict=True))[
        "price"
    ].startswith("decimal")
    _close_frames(got, ts.sufficient_statistics(units, "arm", ["orders", "paid", "price"]))


def ts_spark_col(expression: str):
    from pyspark.sql import functions

    return functions.expr(expression)


def test_sufficient_statistics_errors(spark):
    units = _outcomes(200)
    df = spark.createDataFrame(pa.Table.from_pandas(units, preserve_index=False))
    with pytest.raises(ts.ArgumentError, match=r"metric column 'revenue' is not a column.*arm, "):
        ts_spark.sufficient_statistics(df, "arm", ["revenue"])
    with pytest.raises(ts.ArgumentError, match="arm 'variant' is not a column"):
        ts_spark.sufficient_statistics(df, "variant", ["minutes"])
    with pytest.raises(ts.ArgumentError, match="name at least one metric"):
        ts_spark.sufficient_statistics(df, "arm")
    with pytest.raises(ts.ConfigError, match=r"'arm' must be numeric .* got Spark type string"):
        ts_spark.sufficient_statistics(df, "minutes", ["arm"])
    holes = units.copy()
    holes.loc[[3, 50, 199], "minutes"] = np.nan  # NaN, and NULL once Spark reads it from pandas
    holes["latency_ms"] = holes["latency_ms"].where(holes.index != 7, np.inf)
    table = pa.Table.from_pandas(holes, preserve_index=False)
    minutes = table["minutes"].to_pylist()
    minutes[3] = None
    table = table.set_column(2, "minutes", pa.array(minutes, pa.float64()))
    df = spark.createDataFrame(table)
    with pytest.raises(ts.ConfigError, match="column 'minutes' has 3 missing values"):
        ts_spark.sufficient_statistics(df, "arm", ["minutes"])
    with pytest.raises(ts.ConfigError, match="column 'latency_ms' has 1 infinite value"):
        ts_spark.sufficient_statistics(df, "arm", ["latency_ms"])


# -- the docs page -----------------------------------------------------------------------------


def test_the_docs_page_runs(spark, tmp_path, monkeypatch):
    """docs/spark.md's python blocks, with their ``# ->`` checks, given the ``spark`` session
    the page assumes (tests/test_docs.py skips the page for this)."""
    from test_docs import parse_page, run_block

    page = parse_page(ROOT / "docs" / "spark.md")
    assert page.blocks
    monkeypatch.chdir(tmp_path)
    for name, text in page.files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    namespace = {"__name__": "__docs__", "spark": spark}
    for block in page.blocks:
        run_block(page, block, namespace)


# -- executors running the wheel ---------------------------------------------------------------

DRIVER = """
import json, sys
import datetime as dt
import pyarrow as pa
from pyspark.sql import SparkSession
import trafficsplit as ts
from trafficsplit import spark as ts_spark

config, out = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.getOrCreate()
n = 3000
table = pa.table({"row": list(range(n)),
                  "user_id": [f"user-{i}" if i % 100 else None for i in range(n)],
                  "country": ["US", "CA", "FR"] * (n // 3)})
df = spark.createDataFrame(table).repartition(2)
got = ts_spark.assign(df, config, "user_id", at="2026-11-20T00:00:00Z").toArrow().sort_by("row")
moment = pa.array([dt.datetime(2026, 11, 20)] * n, pa.timestamp("us"))
expected = ts.Splitter(config).assign_frame(table.append_column("at", moment), "user_id",
                                            at_column="at")

def where(batches):
    import sys
    import trafficsplit.spark
    for _ in batches:
        pass
    yield pa.RecordBatch.from_pylist([{"file": trafficsplit.spark.__file__,
                                       "python": sys.executable}])

workers = spark.range(0, 8, numPartitions=4).mapInArrow(where, "file string, python string")
names = [c for k in ts.Splitter(config).snapshot.experiments for c in (k, f"{k}_reason")]
json.dump({
    "workers": [r.asDict() for r in workers.collect()],
    "differ": [c for c in names if got[c].to_pylist() != expected[c].to_pylist()],
    "reasons": sorted(set(got["ranker-v2_reason"].to_pylist())),
    "rows": got.num_rows,
}, open(out, "w"))
spark.stop()
"""


@pytest.mark.slow
@pytest.mark.skipif(not JAVA, reason=NO_JAVA)
def test_executors_run_the_wheel_from_their_own_environment(request, tmp_path):
    """The documented way: the wheel (and pyarrow) installed in the executors' Python, named by
    ``spark.pyspark.python``; the driver submits with spark-submit. The workers must import
    trafficsplit from that environment, and assign as the driver's copy does."""
    import pyspark

    built = request.getfixturevalue("wheel")
    python = _new_venv(tmp_path / "executors")
    _run([python, "-m", "pip", "install", "-q", built, "pyarrow"], env=_clean_env())
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    env = dict(
        os.environ, SPARK_HOME=str(Path(pyspark.__file__).parent), SPARK_LOCAL_IP="127.0.0.1"
    )
    env.pop("PYSPARK_PYTHON", None)
    args = [Path(sys.executable).with_name("spark-submit"), "--master", "local[2]"]
    for key, value in {
        **SESSION,
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": sys.executable,
    }.items():
        args += ["--conf", f"{key}={value}"]
    result = tmp_path / "result.json"
    done = subprocess.run(
        [*map(str, args), str(tmp_path / "driver.py"), str(EXAMPLE), str(result)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(result.read_text(encoding="utf-8"))
    assert report["rows"] == 3000
    assert report["differ"] == []
    assert {"assigned", "missing_unit", "targeting_miss", "holdout"} <= set(report["reasons"])
    site = (tmp_path / "executors").resolve()
    assert report["workers"], report
    for worker in report["workers"]:
        assert Path(worker["python"]) == python
        assert Path(worker["file"]).resolve().is_relative_to(site), worker


def test_spark_reads_the_backfills_own_parquet_as_pyarrow_does(spark, tmp_path):
    """The file trafficsplit.backfill writes without pyarrow's writer (trafficsplit._parquet):
    text, integer and timestamp columns with nulls, dictionary-encoded arms and reasons, row
    groups of several pages."""
    import pyarrow.parquet as pq

    from trafficsplit._parquet import PAGE_ROWS

    n = PAGE_ROWS + 3_000
    rng = np.random.default_rng(4)
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    ids = pa.array([None if i % 97 == 0 else bytes(raw[i]).hex() for i in range(n)])
    seen = pa.array(rng.integers(0, 2**50, n), pa.timestamp("us", tz="UTC"))
    numbers = pa.array([None if i % 5 == 0 else int(v) for i, v in
                        enumerate(rng.integers(-(2**62), 2**62, n))], pa.int64())  # fmt: skip
    pq.write_table(pa.table({"user_id": ids, "seen": seen, "n": numbers}), tmp_path / "in.parquet")
    for codec in ("auto", "zstd", "snappy"):  # auto: every column uncompressed here
        out = tmp_path / f"out-{codec}.parquet"
        ts.backfill(EXAMPLE, tmp_path / "in.parquet", out, "user_id", keep="*",
                    batch_rows=n - 10_000, compression=codec)  # fmt: skip
        assert pq.ParquetFile(out).metadata.created_by.startswith("trafficsplit")
        want = pq.read_table(out).to_pylist()
        for row in want:  # Spark gives times in the session's zone (UTC) without one attached
            row["seen"] = row["seen"].replace(tzinfo=None)
        got = [r.asDict() for r in spark.read.parquet(str(out)).collect()]
        assert len(got) == len(want) == n
        assert got == want, codec
