"""Sticky assignment stores: one behavioural suite for the memory, SQLite and Redis stores
(Redis is a real server started by the redis_url fixture), plus assign_sticky on real
experiments."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

import trafficsplit as ts
from redis_server import redis_url  # noqa: F401
from trafficsplit import ConfigError, UnitTypeError, UnitValueError
from trafficsplit.sticky import (
    MemoryStickyStore,
    RedisStickyStore,
    SQLiteStickyStore,
    StickyStore,
    assign_sticky,
    unit_key,
)

KINDS = ["memory", "sqlite", "redis"]


def _make(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StickyStore:
    if kind == "memory":
        return MemoryStickyStore()
    if kind == "sqlite":
        return SQLiteStickyStore(tmp_path / "sticky.db")
    url = request.getfixturevalue("redis_url")
    return RedisStickyStore(url=url, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StickyStore]:
    with _make(request.param, request, tmp_path) as s:
        yield s


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# -- the behavioural suite, for every store ---------------------------------------------------


def test_is_a_sticky_store(store: StickyStore) -> None:
    assert isinstance(store, StickyStore)


def test_empty_get(store: StickyStore) -> None:
    assert store.get_many("exp", 1, ["u1", "u2"]) == {}
    assert store.get_many("exp", 1, []) == {}
    store.put_many("exp", 1, {})
    assert store.get_many("exp", 1, ["u1"]) == {}


def test_put_then_get(store: StickyStore) -> None:
    store.put_many("exp", 1, {"u1": "a", "u2": "b"})
    assert store.get_many("exp", 1, ["u1", "u2", "u3"]) == {"u1": "a", "u2": "b"}
    assert store.get_many("exp", 1, ("u2", "u2", "u9")) == {"u2": "b"}  # duplicates, tuples
    assert store.get_many("exp", 1, iter(["u1"])) == {"u1": "a"}


def test_first_write_wins(store: StickyStore) -> None:
    store.put_many("exp", 1, {"u1": "a"})
    store.put_many("exp", 1, {"u1": "b", "u2": "b"})
    store.put_many("exp", 1, {"u1": "c", "u2": "c", "u3": "c"})
    assert store.get_many("exp", 1, ["u1", "u2", "u3"]) == {"u1": "a", "u2": "b", "u3": "c"}


def test_bucket_version_isolation(store: StickyStore) -> None:
    store.put_many("exp", 1, {"u1": "a", "u2": "a"})
    assert store.get_many("exp", 2, ["u1", "u2"]) == {}  # the bump forgets
    store.put_many("exp", 2, {"u1": "b"})
    assert store.get_many("exp", 2, ["u1", "u2"]) == {"u1": "b"}
    assert store.get_many("exp", 1, ["u1", "u2"]) == {"u1": "a", "u2": "a"}


def test_experiment_isolation(store: StickyStore) -> None:
    # Names that would collide under a careless key format: "x:1" v1 vs "x" v... .
    names = ["exp", "exp2", "x", "x:1", "x:1:1", "実験 ü", "a/b#2"]
    for i, name in enumerate(names):
        store.put_many(name, 1, {"u1": f"arm{i}"})
    for i, name in enumerate(names):
        assert store.get_many(name, 1, ["u1"]) == {"u1": f"arm{i}"}
    assert store.get_many("exp3", 1, ["u1"]) == {}


def test_large_batch(store: StickyStore) -> None:
    n = 100_000
    units = [f"user-{i}" for i in range(n)]
    arms = {u: ("a", "b", "c")[i % 3] for i, u in enumerate(units)}
    store.put_many("big", 1, arms)
    got = store.get_many("big", 1, [*units, "absent-1", "absent-2"])
    assert got == arms
    # A second large write keeps every first arm and adds only the new units.
    store.put_many("big", 1, {u: "z" for u in [*units[: n // 2], "new-1"]})
    got = store.get_many("big", 1, [*units, "new-1"])
    assert got == {**arms, "new-1": "z"}


def test_unit_keys_of_every_kind(store: StickyStore) -> None:
    ids: list[Any] = [
        "ユーザー-1",
        "",
        "😀",
        "tab\tand\nnewline",
        123,
        -7,
        2**70,
        np.int64(9),
        b"\x00\xff",
        b"hi",
    ]
    keys = [unit_key(u) for u in ids]
    assert keys[4:] == ["123", "-7", str(2**70), "9", "b:00ff", "b:6869"]
    store.put_many("exp", 1, {k: f"arm{i}" for i, k in enumerate(keys)})
    assert store.get_many("exp", 1, keys) == {k: f"arm{i}" for i, k in enumerate(keys)}
    # 123 and "123" are one unit, as in the hash contract.
    assert store.get_many("exp", 1, [unit_key("123")]) == {"123": "arm4"}
    # numpy str elements are str: accepted and stored as plain str.
    assert store.get_many("exp", 1, np.array(["😀", "none"])) == {"😀": "arm2"}


def test_threads_first_write_wins(store: StickyStore) -> None:
    n_threads, n_units, rounds = 8, 1_000, 4
    units = [f"u{i}" for i in range(n_units)]
    writers: dict[str, set[str]] = {u: set() for u in units}
    observed: list[dict[str, str]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(n_threads)
    lock = threading.Lock()

    def work(t: int) -> None:
        rng = random.Random(t)
        try:
            barrier.wait()
            for r in range(rounds):
                mine = rng.sample(units, n_units // 2)  # overlaps every other thread
                with lock:
                    for u in mine:
                        writers[u].add(f"t{t}")
                store.put_many("exp", 1, {u: f"t{t}" for u in mine})
                got = store.get_many("exp", 1, mine)
                assert set(got) == set(mine), f"thread {t} round {r} lost units"
                observed.append(got)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures, failures
    final = store.get_many("exp", 1, units)
    written = {u for u in units if writers[u]}
    assert set(final) == written
    for u, arm in final.items():
        assert arm in writers[u]  # the arm of a thread that wrote this unit
    for got in observed:  # every reader, at any time, saw the one arm that stayed
        for u, arm in got.items():
            assert arm == final[u]


def test_errors(store: StickyStore) -> None:
    with pytest.raises(ConfigError, match=r"experiment must be a non-empty str .* got int 42"):
        store.get_many(42, 1, ["u1"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"experiment must be a non-empty str .* got str ''"):
        store.put_many("", 1, {"u1": "a"})
    with pytest.raises(ConfigError, match="lone surrogate"):
        store.get_many("e\ud800", 1, ["u1"])
    for bad in (0, -1, True, 1.0, "1", 2**32):
        with pytest.raises(ConfigError, match=r"bucket_version must be an int between 1 and"):
            store.get_many("exp", bad, ["u1"])  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"bucket_version must be an int between 1 and"):
            store.put_many("exp", bad, {"u1": "a"})  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError,
        match=r"units\[2\] must be a unit key str, got int 5; "
        r"convert unit ids with .*unit_key",
    ):
        store.get_many("exp", 1, ["u1", "u2", 5])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"units\[0\] must be a unit key str, got bytes"):
        store.get_many("exp", 1, [b"u1"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"units must be a sequence of unit keys .*, got str"):
        store.get_many("exp", 1, "u1")
    with pytest.raises(ConfigError, match=r"units must be a sequence .* got NoneType"):
        store.get_many("exp", 1, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"arms must be a mapping .* got list"):
        store.put_many("exp", 1, [("u1", "a")])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"arms has the key 7 of type int; unit keys must be str"):
        store.put_many("exp", 1, {"u1": "a", 7: "b"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"arms\['u1'\] must be an arm name .* got NoneType"):
        store.put_many("exp", 1, {"u1": None})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"arms\['u1'\] must be an arm name .* got str ''"):
        store.put_many("exp", 1, {"u1": ""})
    # Refused calls wrote nothing; errors are also ValueErrors.
    assert store.get_many("exp", 1, ["u1"]) == {}
    assert issubclass(ConfigError, ValueError)


def test_closed(store: StickyStore) -> None:
    store.put_many("exp", 1, {"u1": "a"})
    store.close()
    store.close()  # idempotent
    with pytest.raises(ValueError, match="is closed"):
        store.get_many("exp", 1, ["u1"])
    with pytest.raises(ValueError, match="is closed"):
        store.put_many("exp", 1, {"u2": "a"})


# -- unit_key ---------------------------------------------------------------------------------


def test_unit_key() -> None:
    assert unit_key("user-1") == "user-1"
    assert unit_key("") == ""
    assert unit_key(123) == unit_key("123") == "123"
    assert unit_key(-0) == "0"
    assert unit_key(np.uint64(2**64 - 1)) == str(2**64 - 1)
    assert unit_key(b"") == "b:"
    assert unit_key(np.bytes_(b"\x01")) == "b:01"
    assert type(unit_key(np.str_("x"))) is str


@pytest.mark.parametrize(
    "bad", [1.0, float("nan"), True, np.bool_(True), None, object(), bytearray(b"x"), ["u"]]
)
def test_unit_key_refuses(bad: Any) -> None:
    with pytest.raises(TypeError) as info:
        unit_key(bad)
    assert isinstance(info.value, UnitTypeError)
    assert type(bad).__name__ in str(info.value) or bad is None


def test_unit_key_lone_surrogate() -> None:
    with pytest.raises(UnitValueError, match="lone surrogate"):
        unit_key("a\udc80")


# -- memory -----------------------------------------------------------------------------------


def test_memory_lru_eviction_order() -> None:
    store = MemoryStickyStore(max_entries=3)
    store.put_many("exp", 1, {"u1": "a", "u2": "a", "u3": "a"})
    assert store.evicted == 0 and len(store) == 3
    assert store.get_many("exp", 1, ["u1"]) == {"u1": "a"}  # u1 is now the most recent
    store.put_many("exp", 1, {"u4": "b"})  # evicts u2, the least recently used
    assert store.evicted == 1
    assert store.get_many("exp", 1, ["u2"]) == {}
    store.put_many("exp", 1, {"u3": "z"})  # offering an entry again is a use; arm kept
    # Order now, oldest first: u1, u4, u3. Other versions share the bound: u1 goes.
    store.put_many("exp", 2, {"u1": "b"})
    assert store.evicted == 2
    assert store.get_many("exp", 1, ["u1", "u3", "u4"]) == {"u3": "a", "u4": "b"}
    assert len(store) == 3
    # An evicted unit is assigned afresh: its next write is a first write again.
    store.put_many("exp", 1, {"u2": "c"})
    assert store.get_many("exp", 1, ["u2"]) == {"u2": "c"}
    assert store.evicted == 3
    assert store.hits + store.misses == 1 + 1 + 3 + 1


def test_memory_batch_larger_than_bound() -> None:
    store = MemoryStickyStore(max_entries=10)
    store.put_many("exp", 1, {f"u{i}": "a" for i in range(25)})
    assert len(store) == 10 and store.evicted == 15
    assert set(store.get_many("exp", 1, [f"u{i}" for i in range(25)])) == {
        f"u{i}" for i in range(15, 25)
    }


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_memory_max_entries_checked(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"max_entries must be an int >= 1, got"):
        MemoryStickyStore(max_entries=bad)


# -- SQLite -----------------------------------------------------------------------------------


def test_sqlite_file_format(tmp_path: Path) -> None:
    path = tmp_path / "sticky.db"
    with SQLiteStickyStore(path) as store:
        store.put_many("exp", 2, {"u1": "a", "b:00ff": "b"})
    # Another reader (any language) sees one plain table in a WAL database.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute(
            "SELECT experiment, bucket_version, unit, arm FROM trafficsplit_sticky ORDER BY unit"
        ).fetchall()
        assert rows == [("exp", 2, "b:00ff", "b"), ("exp", 2, "u1", "a")]
        pk = [
            r[1]
            for r in sorted(
                conn.execute("PRAGMA table_info(trafficsplit_sticky)"), key=lambda r: r[5]
            )
            if r[5]
        ]
        assert pk == ["experiment", "bucket_version", "unit"]
    finally:
        conn.close()
    with SQLiteStickyStore(path) as again:  # reopening keeps the entries
        assert again.get_many("exp", 2, ["u1"]) == {"u1": "a"}


def test_sqlite_chunked_reads_cross_the_parameter_limit(tmp_path: Path) -> None:
    with SQLiteStickyStore(tmp_path / "s.db") as store:
        units = [f"u{i}" for i in range(2_000)]
        store.put_many("exp", 1, {u: "a" for u in units[::2]})
        for n in (897, 898, 899, 1796, 1797, 2000):
            got = store.get_many("exp", 1, units[:n])
            assert got == {u: "a" for u in units[:n:2]}


def test_sqlite_threads_each_connect(tmp_path: Path) -> None:
    with SQLiteStickyStore(tmp_path / "s.db") as store:
        for i in range(20):  # short-lived threads: their connections are reclaimed
            th = threading.Thread(target=store.put_many, args=("exp", 1, {f"u{i}": "a"}))
            th.start()
            th.join()
        assert len(store.get_many("exp", 1, [f"u{i}" for i in range(20)])) == 20


@pytest.mark.parametrize("bad", [":memory:", ""])
def test_sqlite_refuses_private_databases(bad: str) -> None:
    with pytest.raises(ConfigError, match="use MemoryStickyStore"):
        SQLiteStickyStore(bad)


def test_sqlite_bad_path_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStickyStore(tmp_path / "no" / "such" / "dir" / "s.db")


def _sqlite_writer(path: str, arm: str, units: list[str], barrier: Any, results: Any) -> None:
    with SQLiteStickyStore(path) as store:
        if barrier is not None:
            barrier.wait()
        step = 500
        for start in range(0, len(units), step):
            store.put_many("exp", 1, {u: arm for u in units[start : start + step]})
        results.put((arm, store.get_many("exp", 1, units)))


def _run_writers(
    path: Path, jobs: Sequence[tuple[str, list[str]]], together: bool
) -> dict[str, dict[str, str]]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(len(jobs)) if together else None
    procs = [
        ctx.Process(target=_sqlite_writer, args=(str(path), arm, units, barrier, results))
        for arm, units in jobs
    ]
    out: dict[str, dict[str, str]] = {}
    # Read each result before joining: a child flushes its queue before it can exit.
    if together:
        for p in procs:
            p.start()
        for _ in procs:
            arm, got = results.get(timeout=60)
            out[arm] = got
    for p in procs:
        if not together:
            p.start()
            arm, got = results.get(timeout=60)
            out[arm] = got
        p.join(timeout=30)
        assert p.exitcode == 0
    return out


def test_sqlite_two_processes_first_write_wins(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteStickyStore(path).close()
    units = [f"u{i}" for i in range(6_000)]
    # One after the other: the second process keeps the first one's arms, adds its own.
    seen = _run_writers(path, [("first", units[:4_000]), ("second", units[2_000:])], together=False)
    assert seen["second"] == {
        u: "first" if i < 2_000 else "second" for i, u in enumerate(units[2_000:])
    }
    # At the same time, forward and backward over the same units: every unit ends with
    # exactly one arm, and both processes read the same one.
    shared = [f"v{i}" for i in range(6_000)]
    seen = _run_writers(path, [("x", shared), ("y", shared[::-1])], together=True)
    with SQLiteStickyStore(path) as store:
        final = store.get_many("exp", 1, shared)
    assert set(final) == set(shared)
    assert set(final.values()) <= {"x", "y"}
    assert seen["x"] == final and seen["y"] == final


# -- Redis ------------------------------------------------------------------------------------


class CountingConnection(redis.Connection):
    """A real connection that counts the command batches it sends (one per round trip)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)


def test_redis_one_round_trip_per_call(redis_url: str) -> None:  # noqa: F811
    counting = type("Counting", (CountingConnection,), {"sends": 0})
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=counting)
    client = redis.Redis(connection_pool=pool)
    client.ping()  # connects (and says hello) before counting
    with RedisStickyStore(client=client, prefix=f"rt:{uuid.uuid4().hex}:", ttl=600) as store:
        units = [f"user-{i}" for i in range(100_000)]
        before = counting.sends
        store.put_many("exp", 1, {u: "a" for u in units})
        assert counting.sends - before == 1
        before = counting.sends
        assert len(store.get_many("exp", 1, units)) == 100_000
        assert counting.sends - before == 1
        before = counting.sends
        store.get_many("exp", 1, [])
        store.put_many("exp", 1, {})
        assert counting.sends - before == 0  # nothing to do: no round trip
    client.ping()  # a client given to the store stays open: it is the caller's
    client.close()


def test_redis_key_format_and_ttl(redis_url: str, redis_client: redis.Redis) -> None:  # noqa: F811
    prefix = f"ttl:{uuid.uuid4().hex}:"
    with RedisStickyStore(url=redis_url, prefix=prefix, ttl=dt.timedelta(minutes=5)) as store:
        assert store.ttl == 300
        store.put_many("exp:x", 3, {"u1": "a", "b:00ff": "b"})
        key = f"{prefix}exp:x:3"
        assert store.hash_key("exp:x", 3) == key
        assert redis_client.type(key) == b"hash"
        assert redis_client.hgetall(key) == {b"u1": b"a", b"b:00ff": b"b"}
        assert 0 < redis_client.ttl(key) <= 300
        redis_client.expire(key, 10)
        store.put_many("exp:x", 3, {"u1": "z"})  # each write renews the ttl
        assert redis_client.ttl(key) > 10
    with RedisStickyStore(url=redis_url, prefix=prefix) as store:
        store.put_many("exp", 1, {"u1": "a"})
        assert redis_client.ttl(f"{prefix}exp:1") == -1  # no ttl: kept for good


def test_redis_decoding_clients(redis_url: str) -> None:  # noqa: F811
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with RedisStickyStore(client=client, prefix=f"dec:{uuid.uuid4().hex}:") as store:
        store.put_many("exp", 1, {"ü": "ärm"})
        assert store.get_many("exp", 1, ["ü", "x"]) == {"ü": "ärm"}
    client.close()


def test_redis_backend_errors_propagate(redis_url: str, redis_client: redis.Redis) -> None:  # noqa: F811
    prefix = f"err:{uuid.uuid4().hex}:"
    redis_client.set(f"{prefix}exp:1", "not a hash")
    with RedisStickyStore(url=redis_url, prefix=prefix) as store:
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            store.get_many("exp", 1, ["u1"])
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            store.put_many("exp", 1, {"u1": "a"})


def test_redis_arguments_checked(redis_url: str) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match=r"exactly one of client= .* or url= .* got neither"):
        RedisStickyStore()
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(ConfigError, match="got both"):
        RedisStickyStore(client=client, url=redis_url)
    with pytest.raises(ConfigError, match=r"client must be a redis.Redis \(it has no hmget"):
        RedisStickyStore(client=object())
    for bad in (0, -5, 1.5, True, dt.timedelta(milliseconds=1500)):
        with pytest.raises(ConfigError, match="ttl must be"):
            RedisStickyStore(client=client, ttl=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prefix must be a str"):
        RedisStickyStore(client=client, prefix=b"x")  # type: ignore[arg-type]
    client.close()


# -- assign_sticky on real experiments, for every store ---------------------------------------


class CountingStore:
    """Delegates to a real store and records the calls made to it."""

    def __init__(self, inner: StickyStore) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    def get_many(
        self, experiment: str, bucket_version: int, units: Sequence[str]
    ) -> dict[str, str]:
        self.calls.append(("get_many", len(units)))
        return self.inner.get_many(experiment, bucket_version, units)

    def put_many(self, experiment: str, bucket_version: int, arms: Mapping[str, str]) -> None:
        self.calls.append(("put_many", len(arms)))
        self.inner.put_many(experiment, bucket_version, arms)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> CountingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_assign_sticky_keeps_first_arms_across_reallocation(store: StickyStore) -> None:
    n = 20_000
    e1 = ts.Experiment("exp", {"a": 50, "b": 50})
    e2 = e1.reallocate({"a": 10, "b": 90}, effective="2026-01-01")
    old = [f"user-{i}" for i in range(n)]
    fresh = [f"new-{i}" for i in range(n)]

    first = assign_sticky(e1, old, store)
    assert first == e1.assign_batch(old).arm.tolist()
    assert store.get_many("exp", 1, old) == dict(zip(old, first, strict=True))

    counted = CountingStore(store)
    second = assign_sticky(e2, old + fresh, counted)
    assert counted.calls == [("get_many", 2 * n), ("put_many", n)]  # one read, one write
    plain = e2.assign_batch(old + fresh).arm.tolist()
    assert second[:n] == first  # every stored unit keeps its first arm
    assert second[n:] == plain[n:]  # fresh units follow e2's weights
    share_b = second[n:].count("b") / n
    assert 0.88 < share_b < 0.92
    moved = sum(x != y for x, y in zip(first, plain[:n], strict=True)) / n
    assert 0.35 < moved < 0.45  # without the store, ~40 % (the TV distance) would have moved
    assert store.get_many("exp", 1, fresh) == dict(zip(fresh, plain[n:], strict=True))

    counted.calls.clear()
    assert assign_sticky(e2, old[:100], counted) == first[:100]
    assert counted.calls == [("get_many", 100)]  # all stored: nothing to write

    # Raising the bucket version re-randomises: the old entries are ignored, and kept.
    e3 = ts.Experiment("exp", {"a": 10, "b": 90}, bucket_version=2)
    third = assign_sticky(e3, old, store)
    assert third == e3.assign_batch(old).arm.tolist()
    assert third.count("b") / n > 0.88
    assert store.get_many("exp", 1, old[:1000]) == dict(zip(old[:1000], first[:1000], strict=True))


def test_assign_sticky_unassigned_units_are_not_stored(store: StickyStore) -> None:
    half = ts.Experiment("exp-x", {"a": 100, "b": 0}, exposure=0.5)
    units: list[Any] = [None, float("nan"), *[f"u{i}" for i in range(200)]]
    arms = assign_sticky(half, units, store)
    assert arms[:2] == [None, None]  # missing units: no key, no store entry
    entered = [u for u, a in zip(units, arms, strict=True) if a is not None]
    assert 60 < len(entered) < 140 and all(a in (None, "a") for a in arms)
    assert set(store.get_many("exp-x", 1, units[2:])) == set(entered)
    # Later: everyone enters and the weights flip; stored units stay on "a", newcomers get
    # "b" (units left out before were not stored, so they are assigned now).
    full = ts.Experiment("exp-x", {"a": 0, "b": 100}, exposure=1.0)
    again = assign_sticky(full, units, store)
    assert again == [None, None] + ["a" if u in set(entered) else "b" for u in units[2:]]
    # Lowering the exposure does not take stored units out: everyone is stored by now.
    low = ts.Experiment("exp-x", {"a": 0, "b": 100}, exposure=0.1)
    assert assign_sticky(low, units, store) == again


def test_assign_sticky_unit_kinds_share_keys(store: StickyStore) -> None:
    exp = ts.Experiment("kinds", {"a": 50, "b": 50})
    units: list[Any] = [123, "123", np.int64(123), b"hi", "ユーザー", 2**70]
    arms = assign_sticky(exp, units, store)
    assert arms == exp.assign_batch(units).arm.tolist()
    assert arms[0] == arms[1] == arms[2]
    assert store.get_many("kinds", 1, ["123", "b:6869", "ユーザー", str(2**70)]) == {
        "123": arms[0],
        "b:6869": arms[3],
        "ユーザー": arms[4],
        str(2**70): arms[5],
    }
    # numpy and pandas columns work the same way; generators are read once.
    pd = pytest.importorskip("pandas")
    col = np.array([123, 7], dtype=np.int64)
    assert assign_sticky(exp, col, store)[0] == arms[0]
    series = pd.Series([123, None, 7], dtype="Int64")
    assert assign_sticky(exp, series, store) == [arms[0], None, exp.assign(7).arm]
    assert assign_sticky(exp, (u for u in ["123", "x"]), store)[0] == arms[0]


def test_assign_sticky_ignores_unknown_stored_arms(store: StickyStore) -> None:
    exp = ts.Experiment("stale", {"a": 50, "b": 50})
    store.put_many("stale", 1, {"u1": "renamed-arm"})
    assert assign_sticky(exp, ["u1", "u2"], store) == exp.assign_batch(["u1", "u2"]).arm.tolist()
    # The unknown entry stays as it was; the fresh unit was stored.
    assert store.get_many("stale", 1, ["u1", "u2"]) == {
        "u1": "renamed-arm",
        "u2": exp.assign("u2").arm,
    }


def test_assign_sticky_refuses_bad_units_before_io(store: StickyStore) -> None:
    exp = ts.Experiment("bad", {"a": 50, "b": 50})
    counted = CountingStore(store)
    with pytest.raises(UnitTypeError):
        assign_sticky(exp, ["u3", 1.5], counted)
    with pytest.raises(UnitTypeError):
        assign_sticky(exp, ["u3", True], counted)
    assert counted.calls == []


def test_assign_sticky_targeting_beats_stored_arms(store: StickyStore) -> None:
    exp = ts.Experiment("geo", {"a": 50, "b": 50}, targeting='country == "US"')
    units = [f"u{i}" for i in range(100)]
    first = assign_sticky(exp, units, store, attributes={"country": ["US"] * 100})
    assert None not in first
    # The same units, half of them now outside the cohort: those get no arm, the rest
    # keep theirs; nothing is overwritten.
    moved = exp.reallocate({"a": 0, "b": 100}, effective="2026-01-01")
    countries = ["US", "CA"] * 50
    again = assign_sticky(moved, units, store, attributes={"country": countries})
    assert again == [arm if c == "US" else None for arm, c in zip(first, countries, strict=True)]
    assert store.get_many("geo", 1, units) == dict(zip(units, first, strict=True))
