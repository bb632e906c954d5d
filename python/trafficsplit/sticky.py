"""Sticky assignment stores: a unit keeps the first arm it got in an experiment, across later
weight changes, until the experiment's bucket version is raised (docs/sticky.md).

Stores sit around the pure evaluation, never inside it: one batch read before, one batch write
after. :func:`assign_sticky` does exactly that.

>>> import trafficsplit as ts
>>> from trafficsplit.sticky import MemoryStickyStore, assign_sticky
>>> store = MemoryStickyStore()
>>> e1 = ts.Experiment("ranker", {"control": 100, "treatment": 0})
>>> assign_sticky(e1, ["user-1", 42], store)
['control', 'control']
>>> e2 = e1.reallocate({"control": 0, "treatment": 100}, effective="2026-01-01")
>>> assign_sticky(e2, ["user-1", 42, "user-2"], store)
['control', 'control', 'treatment']

Store keys are canonical unit text made by :func:`unit_key`; every store refuses anything else.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from ._optional import require
from ._shared.checks import is_integer, is_real
from ._shared.keys import unit_key
from .errors import ConfigError

if TYPE_CHECKING:
    import sqlite3

    from .experiment import Experiment

__all__ = [
    "MemoryStickyStore",
    "RedisStickyStore",
    "SQLiteStickyStore",
    "StickyStore",
    "assign_sticky",
    "unit_key",
]

MAX_BUCKET_VERSION = 2**32 - 1
"""The largest bucket version (as for :class:`trafficsplit.Experiment`)."""

SQLITE_MAX_PARAMETERS = 900
"""Bound parameters per SQLite statement (older SQLite builds allow 999)."""

SQLITE_TABLE = "trafficsplit_sticky"
"""The table :class:`SQLiteStickyStore` keeps its entries in."""

_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} (
    experiment     TEXT    NOT NULL,
    bucket_version INTEGER NOT NULL,
    unit           TEXT    NOT NULL,
    arm            TEXT    NOT NULL,
    PRIMARY KEY (experiment, bucket_version, unit)
) WITHOUT ROWID
"""
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO {SQLITE_TABLE} (experiment, bucket_version, unit, arm) "
    "VALUES (?, ?, ?, ?)"
)


# -- argument checks -----------------------------------------------------------------------------


def _check_scope(experiment: Any, bucket_version: Any) -> tuple[str, int]:
    if not isinstance(experiment, str) or not experiment:
        raise ConfigError(
            "experiment must be a non-empty str (the experiment's key), "
            f"got {type(experiment).__name__} {experiment!r}"
        )
    try:
        experiment.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"experiment must be valid Unicode (it contains a lone surrogate): {experiment!r}"
        ) from None
    if not is_integer(bucket_version) or not 1 <= int(bucket_version) <= MAX_BUCKET_VERSION:
        raise ConfigError(
            f"bucket_version must be an int between 1 and {MAX_BUCKET_VERSION}, "
            f"got {type(bucket_version).__name__} {bucket_version!r}"
        )
    return experiment, int(bucket_version)


def _check_units(units: Any) -> list[str]:
    """The distinct unit keys of ``units``, in first-seen order."""
    if isinstance(units, str | bytes) or not isinstance(units, Iterable):
        raise ConfigError(
            f"units must be a sequence of unit keys (str), got {type(units).__name__} {units!r:.80}"
        )
    seq = list(units)
    for i, u in enumerate(seq):
        if type(u) is not str:
            if not isinstance(u, str):
                raise ConfigError(
                    f"units[{i}] must be a unit key str, got {type(u).__name__} {u!r}; "
                    "convert unit ids with trafficsplit.sticky.unit_key()"
                )
            seq[i] = str.__str__(u)
    return list(dict.fromkeys(seq))


def _check_arms(arms: Any) -> list[tuple[str, str]]:
    if not isinstance(arms, Mapping):
        raise ConfigError(
            f"arms must be a mapping of unit key (str) -> arm name (str), got {type(arms).__name__}"
        )
    items = list(arms.items())
    for i, (unit, arm) in enumerate(items):
        if not isinstance(unit, str):
            raise ConfigError(
                f"arms has the key {unit!r} of type {type(unit).__name__}; unit keys must be str "
                "(convert unit ids with trafficsplit.sticky.unit_key())"
            )
        if not isinstance(arm, str) or not arm:
            raise ConfigError(
                f"arms[{unit!r}] must be an arm name (a non-empty str), "
                f"got {type(arm).__name__} {arm!r}"
            )
        if type(unit) is not str or type(arm) is not str:
            items[i] = (str.__str__(unit), str.__str__(arm))
    return items


# -- the protocol ---------------------------------------------------------------------------------


@runtime_checkable
class StickyStore(Protocol):
    """Where first arms are kept, per (experiment key, bucket version, unit key).

    Batch-first: one call reads or writes a whole batch. ``put_many`` never overwrites: a unit
    that already has an arm keeps it (first write wins, atomically per unit). Unit keys are
    the text :func:`unit_key` makes. Stores are context managers that ``close()`` on exit.

    >>> with MemoryStickyStore() as store:
    ...     store.put_many("exp", 1, {"u1": "a"})
    ...     store.put_many("exp", 1, {"u1": "b", "u2": "b"})
    ...     store.get_many("exp", 1, ["u1", "u2", "u3"])
    {'u1': 'a', 'u2': 'b'}
    """

    def get_many(
        self, experiment: str, bucket_version: int, units: Sequence[str]
    ) -> dict[str, str]:
        """The stored arm of every unit in ``units`` that has one."""
        ...

    def put_many(self, experiment: str, bucket_version: int, arms: Mapping[str, str]) -> None:
        """Stores ``unit -> arm`` for every unit that has no arm yet; others keep theirs."""
        ...

    def close(self) -> None:
        """Releases connections; further calls raise ``ValueError``. Idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Store:
    _closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{type(self).__name__} is closed")


# -- memory ---------------------------------------------------------------------------------------


class MemoryStickyStore(_Store):
    """An in-process store: a thread-safe, bounded LRU map of
    (experiment, bucket_version, unit) -> arm.

    When more than ``max_entries`` entries are held, the least recently used go (reading an
    entry with ``get_many`` or offering it again with ``put_many`` counts as a use); ``evicted``
    counts them. An evicted unit is assigned afresh next time, so size the bound above the
    number of units that must stay sticky. Nothing is shared between processes.

    >>> store = MemoryStickyStore(max_entries=2)
    >>> store.put_many("exp", 1, {"u1": "a", "u2": "b", "u3": "a"})
    >>> store.get_many("exp", 1, ["u1", "u2", "u3"]), store.evicted
    ({'u2': 'b', 'u3': 'a'}, 1)
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if not is_integer(max_entries) or max_entries < 1:
            raise ConfigError(f"max_entries must be an int >= 1, got {max_entries!r}")
        self._max_entries = int(max_entries)
        self._data: OrderedDict[tuple[str, int, str], str] = OrderedDict()
        self._lock = threading.Lock()
        self._evicted = 0
        self._hits = 0
        self._misses = 0

    @property
    def max_entries(self) -> int:
        """The bound on the number of entries."""
        return self._max_entries

    @property
    def evicted(self) -> int:
        """Entries dropped to keep within ``max_entries``, since the store was made."""
        return self._evicted

    @property
    def hits(self) -> int:
        """Units that ``get_many`` found."""
        return self._hits

    @property
    def misses(self) -> int:
        """Units that ``get_many`` did not find."""
        return self._misses

    def __len__(self) -> int:
        return len(self._data)

    def get_many(
        self, experiment: str, bucket_version: int, units: Sequence[str]
    ) -> dict[str, str]:
        """The stored arm of every unit in ``units`` that has one."""
        experiment, version = _check_scope(experiment, bucket_version)
        keys = _check_units(units)
        out: dict[str, str] = {}
        with self._lock:
            self._check_open()
            data = self._data
            for unit in keys:
                key = (experiment, version, unit)
                arm = data.get(key)
                if arm is not None:
                    data.move_to_end(key)
                    out[unit] = arm
            self._hits += len(out)
            self._misses += len(keys) - len(out)
        return out

    def put_many(self, experiment: str, bucket_version: int, arms: Mapping[str, str]) -> None:
        """Stores ``unit -> arm`` for every unit that has no arm yet (``setdefault``)."""
        experiment, version = _check_scope(experiment, bucket_version)
        items = _check_arms(arms)
        with self._lock:
            self._check_open()
            data = self._data
            limit = self._max_entries
            for unit, arm in items:
                key = (experiment, version, unit)
                if key in data:
                    data.move_to_end(key)
                    continue
                data[key] = arm
                if len(data) > limit:
                    data.popitem(last=False)
                    self._evicted += 1

    def close(self) -> None:
        """Drops every entry. Idempotent."""
        with self._lock:
            self._closed = True
            self._data.clear()

    def __repr__(self) -> str:
        return f"MemoryStickyStore(entries={len(self._data)}, max_entries={self._max_entries})"


# -- SQLite ---------------------------------------------------------------------------------------


class SQLiteStickyStore(_Store):
    """A store in an SQLite database file (stdlib ``sqlite3``), shared by the threads and
    processes that open the same file.

    One table, ``trafficsplit_sticky(experiment, bucket_version, unit, arm)`` with primary key
    ``(experiment, bucket_version, unit)``. The database runs in WAL mode (readers do not block
    the writer); each ``put_many`` is one ``INSERT OR IGNORE`` transaction, so when threads or
    processes write the same unit, the first committed arm stays. Writers wait up to ``timeout``
    seconds for the lock (``busy_timeout``), then ``sqlite3.OperationalError`` ("database is
    locked") propagates. Each thread gets its own connection; connections of threads that have
    ended are closed when a new thread connects, and a forked child opens its own.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sticky.db"
    >>> with SQLiteStickyStore(path) as store:
    ...     store.put_many("exp", 1, {"u1": "a"})
    ...     store.get_many("exp", 1, ["u1", "u2"])
    {'u1': 'a'}
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ConfigError(
                f"path must be a file path (str or os.PathLike), got {type(path).__name__}"
            )
        fspath = os.fspath(path)
        if not isinstance(fspath, str) or fspath in ("", ":memory:"):
            raise ConfigError(
                f"path must name a database file, got {fspath!r}; an in-memory SQLite "
                "database is private to one connection: use MemoryStickyStore instead"
            )
        if not is_real(timeout) or not (math.isfinite(timeout) and timeout >= 0):
            raise ConfigError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        self._path = fspath
        self._timeout = float(timeout)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        self._pid = os.getpid()
        self._ready = False
        self._select_sql: dict[int, str] = {}
        self._connection()  # creates the table now: a bad path fails here, not mid-request

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def _connection(self) -> sqlite3.Connection:
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[0] == os.getpid() and not self._closed:
            return cached[1]
        return self._open()

    def _open(self) -> sqlite3.Connection:
        import sqlite3  # here, not at package import: a server without sticky stores skips it

        self._check_open()
        pid = os.getpid()
        if pid != self._pid:
            # A forked child must not touch its parent's connections: forget them unclosed.
            self._pid = pid
            self._conns = {}
            self._lock = threading.Lock()
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {round(self._timeout * 1000)}")
            if not self._ready:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(
                        f"{self._path}: could not switch the journal to WAL mode (it is {mode!r})"
                    )
                conn.execute(_SQLITE_SCHEMA)
                self._ready = True
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        thread = threading.current_thread()
        with self._lock:
            if self._closed:
                conn.close()
                self._check_open()
            for ident, (owner, old) in list(self._conns.items()):
                if not owner.is_alive():
                    old.close()
                    del self._conns[ident]
            self._conns[threading.get_ident()] = (thread, conn)
        self._local.conn = (pid, conn)
        return conn

    def _select(self, n: int) -> str:
        sql = self._select_sql.get(n)
        if sql is None:
            sql = (
                f"SELECT unit, arm FROM {SQLITE_TABLE} WHERE experiment = ? AND "
                f"bucket_version = ? AND unit IN ({', '.join('?' * n)})"
            )
            self._select_sql[n] = sql
        return sql

    def get_many(
        self, experiment: str, bucket_version: int, units: Sequence[str]
    ) -> dict[str, str]:
        """The stored arm of every unit in ``units`` that has one; large batches are read in
        chunks of at most 900 parameters, in one read transaction."""
        experiment, version = _check_scope(experiment, bucket_version)
        keys = _check_units(units)
        conn = self._connection()
        out: dict[str, str] = {}
        if not keys:
            return out
        step = SQLITE_MAX_PARAMETERS - 2
        several = len(keys) > step
        if several:
            conn.execute("BEGIN")
        try:
            for start in range(0, len(keys), step):
                chunk = keys[start : start + step]
                out.update(conn.execute(self._select(len(chunk)), (experiment, version, *chunk)))
        finally:
            if several:
                conn.execute("COMMIT")
        return out

    def put_many(self, experiment: str, bucket_version: int, arms: Mapping[str, str]) -> None:
        """Stores ``unit -> arm`` for every unit that has no arm yet, in one transaction
        (``INSERT OR IGNORE``)."""
        experiment, version = _check_scope(experiment, bucket_version)
        items = _check_arms(arms)
        conn = self._connection()
        if not items:
            return
        rows = [(experiment, version, unit, arm) for unit, arm in items]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_SQLITE_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Closes every connection this store opened in this process. Call it when no other
        thread is inside a store call. Idempotent."""
        with self._lock:
            self._closed = True
            conns = self._conns if os.getpid() == self._pid else {}
            self._conns = {}
        for _, conn in conns.values():
            conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStickyStore({self._path!r})"


# -- Redis ----------------------------------------------------------------------------------------


class RedisStickyStore(_Store):
    """A store in a Redis server (redis-py), shared by every process that reaches it.

    One hash per (experiment, bucket version), named ``f"{prefix}{experiment}:{bucket_version}"``,
    field = unit key, value = arm name. ``get_many`` is one ``HMGET``; ``put_many`` is one
    pipeline of ``HSETNX`` (first write wins per unit) plus, with ``ttl``, an ``EXPIRE`` of the
    hash, which each write renews. Each call is one round trip. Give either ``client`` (a
    ``redis.Redis``, which stays yours to close; it must not use a non-UTF-8 ``encoding``) or
    ``url`` (the store makes a client and closes it in :meth:`close`). Server and connection
    failures propagate as ``redis.exceptions.RedisError`` subclasses.

    ``ttl``: seconds (int >= 1 or ``datetime.timedelta``) after the last write to an
    experiment's hash at which Redis drops it; None (default) keeps it for good.

    >>> store = RedisStickyStore(url="redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> store.put_many("exp", 1, {"u1": "a"})  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any = None,
        url: str | None = None,
        prefix: str = "trafficsplit:sticky:",
        ttl: int | _dt.timedelta | None = None,
    ) -> None:
        if (client is None) == (url is None):
            raise ConfigError(
                "give exactly one of client= (a redis.Redis) or url= "
                "(e.g. 'redis://127.0.0.1:6379/0'), "
                f"got {'both' if client is not None else 'neither'}"
            )
        if not isinstance(prefix, str):
            raise ConfigError(f"prefix must be a str, got {type(prefix).__name__} {prefix!r}")
        self._ttl = _check_ttl(ttl)
        self._prefix = prefix
        if url is not None:
            if not isinstance(url, str) or not url:
                raise ConfigError(f"url must be a redis:// URL str, got {url!r}")
            redis = require("redis", what="RedisStickyStore")
            client = redis.Redis.from_url(url)
            self._owns_client = True
        else:
            for method in ("hmget", "pipeline"):
                if not callable(getattr(client, method, None)):
                    raise ConfigError(
                        f"client must be a redis.Redis (it has no {method}()), "
                        f"got {type(client).__name__}"
                    )
            self._owns_client = False
        self._client = client

    @property
    def client(self) -> Any:
        """The redis-py client."""
        return self._client

    @property
    def prefix(self) -> str:
        """What every hash key starts with."""
        return self._prefix

    @property
    def ttl(self) -> int | None:
        """Seconds a hash lives after its last write, or None."""
        return self._ttl

    def hash_key(self, experiment: str, bucket_version: int) -> str:
        """The Redis key of the hash holding one experiment version's entries:
        ``f"{prefix}{experiment}:{bucket_version}"``, e.g. ``trafficsplit:sticky:exp:2``."""
        experiment, version = _check_scope(experiment, bucket_version)
        return f"{self._prefix}{experiment}:{version}"

    def get_many(
        self, experiment: str, bucket_version: int, units: Sequence[str]
    ) -> dict[str, str]:
        """The stored arm of every unit in ``units`` that has one: one ``HMGET``."""
        key = self.hash_key(experiment, bucket_version)
        keys = _check_units(units)
        self._check_open()
        if not keys:
            return {}
        values = self._client.hmget(key, keys)
        return {
            unit: arm.decode("utf-8") if isinstance(arm, bytes) else arm
            for unit, arm in zip(keys, values, strict=True)
            if arm is not None
        }

    def put_many(self, experiment: str, bucket_version: int, arms: Mapping[str, str]) -> None:
        """Stores ``unit -> arm`` for every unit that has no arm yet: one pipeline of
        ``HSETNX`` (and ``EXPIRE`` with a ttl), sent in one round trip without MULTI."""
        key = self.hash_key(experiment, bucket_version)
        items = _check_arms(arms)
        self._check_open()
        if not items:
            return
        with self._client.pipeline(transaction=False) as pipe:
            command = pipe.execute_command
            for unit, arm in items:
                command("HSETNX", key, unit, arm)
            if self._ttl is not None:
                command("EXPIRE", key, self._ttl)
            pipe.execute()

    def close(self) -> None:
        """Closes the client if the store made it (from ``url``). Idempotent."""
        if not self._closed:
            self._closed = True
            if self._owns_client:
                self._client.close()

    def __repr__(self) -> str:
        return f"RedisStickyStore(prefix={self._prefix!r}, ttl={self._ttl!r})"


def _check_ttl(ttl: Any) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, _dt.timedelta):
        seconds = ttl.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ConfigError(f"ttl must be a whole number of seconds >= 1, got {ttl!r}")
        return int(seconds)
    if not is_integer(ttl) or ttl < 1:
        raise ConfigError(f"ttl must be None, an int of seconds >= 1 or a timedelta, got {ttl!r}")
    return int(ttl)


# -- assignment with a store ----------------------------------------------------------------------


def _as_list(units: Any) -> Any:
    """Materialises one-shot iterables (which assign_batch would consume)."""
    if isinstance(units, str | bytes):
        return units  # assign_batch refuses a scalar with its own message
    if hasattr(units, "__len__") and hasattr(units, "__getitem__"):
        return units
    if isinstance(units, Iterable) and not hasattr(units, "__arrow_c_array__"):
        return list(units)
    return units


def _python_values(units: Any) -> list[Any]:
    if hasattr(units, "to_pylist"):  # pyarrow arrays and chunked arrays
        return list(units.to_pylist())
    if hasattr(units, "tolist"):  # numpy arrays, pandas Series / Index
        return list(units.tolist())
    return list(units)


def assign_sticky(
    experiment: Experiment,
    units: Any,
    store: StickyStore,
    at: Any = None,
    *,
    attributes: Any = None,
) -> list[str | None]:
    """Arms for a batch of units, keeping every unit's first arm: one ``get_many`` before,
    one ``put_many`` of the newly assigned after.

    Evaluates ``experiment.assign_batch(units, at=at, attributes=attributes)`` first. Units
    that are eligible (reason 'assigned' or 'not_exposed') and have a stored arm under
    ``(experiment.key, experiment.bucket_version)`` get that arm back, whatever the current
    weights or exposure say. The others keep the evaluated arm, which is stored when there is
    one. Units without an arm (missing, not exposed, outside the targeting, not started) get
    None and are not stored, so they can enter later; a unit outside the targeting gets None
    even if it has a stored arm. Raise ``bucket_version`` to re-randomise everyone: stores keep
    each version apart.

    ``units`` are what ``assign_batch`` takes (lists, numpy, pandas, Arrow). A stored arm that
    is not among the experiment's arms is ignored (the unit gets its evaluated arm; the entry
    stays). Two processes that assign the same new unit at once under different weights may
    each answer with their own arm once; the store keeps the first write.

    >>> import trafficsplit as ts
    >>> store = MemoryStickyStore()
    >>> exp = ts.Experiment("exp", {"a": 50, "b": 50}, exposure=1.0)
    >>> first = assign_sticky(exp, ["u1", "u2", None], store)
    >>> first[2] is None, store.get_many("exp", 1, ["u1"]) == {"u1": first[0]}
    (True, True)
    """
    units = _as_list(units)
    batch = experiment.assign_batch(units, at=at, attributes=attributes)
    fresh: list[str | None] = batch.arm.tolist()
    eligible = _eligible_codes()
    keys: list[str | None] = [
        unit_key(unit) if reason in eligible else None
        for unit, reason in zip(_python_values(units), batch.reason.tolist(), strict=True)
    ]
    present = [k for k in keys if k is not None]
    name, version = experiment.key, experiment.bucket_version
    stored = store.get_many(name, version, present) if present else {}
    known = set(experiment.arm_names)
    out: list[str | None] = []
    new: dict[str, str] = {}
    for key, arm in zip(keys, fresh, strict=True):
        if key is None:
            out.append(arm)  # None: no arm, and stickiness does not apply
            continue
        kept = stored.get(key)
        if kept is not None and kept in known:
            out.append(kept)
        else:
            out.append(arm)
            if arm is not None and kept is None:
                new.setdefault(key, arm)
    if new:
        store.put_many(name, version, new)
    return out


def _eligible_codes() -> frozenset[int]:
    from .batch import REASONS

    return frozenset((REASONS.index("assigned"), REASONS.index("not_exposed")))
