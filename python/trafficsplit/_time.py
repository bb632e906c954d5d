"""Times as integer microseconds since the Unix epoch (UTC), the core's unit."""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from typing import Any

import numpy as np

from ._optional import loaded
from .errors import ConfigError

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)

TimeLike = _dt.datetime | _dt.date | int | float | np.datetime64 | str

# Every time is within what a datetime can hold: 0001-01-01 to 9999-12-31 (UTC), so that it
# fits the core's int64 microseconds and comes back as a datetime. Epoch seconds outside it
# are most often milliseconds, microseconds or nanoseconds given by mistake.
MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_800  # 10000-01-01T00:00:00Z, excluded
MIN_US = MIN_SECONDS * 1_000_000
MAX_US = MAX_SECONDS * 1_000_000 - 1


def _out_of_range(what: str, value: Any) -> ConfigError:
    hint = ""
    if isinstance(value, int | float | np.integer | np.floating) and abs(float(value)) >= 1e11:
        hint = (
            "; epoch times are seconds: divide milliseconds by 1e3, microseconds by 1e6 or "
            "nanoseconds by 1e9"
        )
    return ConfigError(
        f"{what} = {value!r} is out of range: times run from 0001-01-01 to 9999-12-31{hint}"
    )


def to_micros(value: Any, what: str = "at") -> int:
    """Converts a time to microseconds since the epoch.

    Accepts aware datetimes, naive datetimes (taken as UTC), dates (midnight UTC), numpy
    datetime64, ISO-8601 strings and epoch seconds (int or float).
    """
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, _dt.date):
        return to_micros(_dt.datetime(value.year, value.month, value.day), what)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ConfigError(f"{what} is NaT; expected a time")
        lo = np.datetime64(MIN_SECONDS, "s")
        hi = np.datetime64(MAX_SECONDS, "s")
        if not lo <= value < hi:
            raise _out_of_range(what, value)
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{what} = {value!r} is not an ISO-8601 time") from None
        return to_micros(parsed, what)
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a time, got bool")
    if isinstance(value, numbers.Integral):
        if not MIN_SECONDS <= int(value) < MAX_SECONDS:
            raise _out_of_range(what, value)
        return int(value) * 1_000_000
    if isinstance(value, numbers.Real):
        if not np.isfinite(float(value)):
            raise ConfigError(f"{what} must be a finite time, got {value!r}")
        if not MIN_SECONDS <= float(value) < MAX_SECONDS:
            raise _out_of_range(what, value)
        return round(float(value) * 1_000_000)
    raise ConfigError(
        f"{what} must be a datetime, date, numpy datetime64, ISO-8601 string or epoch seconds; "
        f"got {type(value).__name__}"
    )


def from_micros(us: int) -> _dt.datetime:
    """The aware UTC datetime for microseconds since the epoch."""
    return _EPOCH + _dt.timedelta(microseconds=us)


class Micros:
    """Per-row times converted once (microseconds, contiguous int64), for calls that several
    experiments share."""

    __slots__ = ("rows",)

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows


def micros_array(values: Any, n: int) -> np.ndarray:
    """Per-row times as a contiguous int64 array of microseconds (for batch replay)."""
    pd = loaded("pandas")  # a pandas input exists only when pandas is loaded
    if pd is not None and isinstance(values, pd.Series | pd.Index | pd.DatetimeIndex):
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            ser = pd.Series(values)
            if ser.isna().any():
                row = int(np.flatnonzero(ser.isna().to_numpy())[0])
                raise ConfigError(f"at is missing (NaT) at row {row}; expected a time per row")
            if getattr(ser.dt, "tz", None) is not None:
                ser = ser.dt.tz_convert("UTC").dt.tz_localize(None)
            return np.ascontiguousarray(ser.to_numpy().astype("datetime64[us]").astype(np.int64))
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise ConfigError(f"at must hold one time per unit id: {n} unit ids, shape {arr.shape}")
    if arr.dtype.kind == "M":
        nat = np.isnat(arr)
        if nat.any():
            row = int(np.flatnonzero(nat)[0])
            raise ConfigError(f"at is missing (NaT) at row {row}; expected a time per row")
        # Compared in seconds: the bounds do not fit every unit (nanoseconds end in 2262).
        seconds = arr.astype("datetime64[s]").astype(np.int64)
        _check_rows(arr, (seconds < MIN_SECONDS) | (seconds >= MAX_SECONDS))
        return np.ascontiguousarray(arr.astype("datetime64[us]").astype(np.int64))
    if arr.dtype.kind in "iu":
        # Compared before multiplying, so that no value wraps around.
        _check_rows(arr, (arr < MIN_SECONDS) | (arr >= MAX_SECONDS))
        return np.ascontiguousarray(arr.astype(np.int64) * 1_000_000)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"at is not a finite time at row {row}")
        _check_rows(arr, (arr < MIN_SECONDS) | (arr >= MAX_SECONDS))
        return np.ascontiguousarray(np.round(arr * 1_000_000).astype(np.int64))
    if arr.dtype.kind == "O":
        return np.fromiter(
            (to_micros(v, f"at[{i}]") for i, v in enumerate(arr)), np.int64, len(arr)
        )
    raise ConfigError(
        f"at must hold times (datetime64, datetimes or epoch seconds), got {arr.dtype}"
    )


def _check_rows(arr: np.ndarray, outside: np.ndarray) -> None:
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise _out_of_range(f"at[{row}]", arr[row].item())


def parse_duration(value: Any) -> _dt.timedelta | None:
    """'90s', '15m', '2h', '1d', or a number of seconds."""
    seconds = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and len(value) >= 2 and value[-1] in "smhd":
        try:
            seconds = float(value[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[value[-1]]
        except ValueError:
            return None
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= 100 * 365 * 86400:
        return None  # negative, NaN, infinite or beyond a century
    return _dt.timedelta(seconds=seconds)
