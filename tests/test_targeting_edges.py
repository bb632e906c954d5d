"""Targeting at the edges of its types: integers across int64, uint64 and beyond, integers
against doubles, timestamps from year 1 to 9999 in every unit, text with embedded NULs, and
error messages that carry them. Python's own exact int, float and datetime comparisons are the
oracle; `mask` must equal `matches` row by row."""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafficsplit import Targeting, TargetingSyntaxError

UTC = dt.UTC
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
EDGE_INTS = [
    0,
    1,
    -1,
    2**53 - 1,
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    -(2**53),
    I64_MAX - 1,
    I64_MAX,
    2**63,
    2**63 + 1,
    U64_MAX - 1,
    U64_MAX,
    I64_MIN,
    I64_MIN + 1,
    I64_MIN - 1,
    2**64,
    2**64 + 1,
    18446744073709551000,
    -(2**64) - 1,
    2**100,
    -(2**100),
    10**30,
    1000000000000000019884624838656,  # the double nearest 1e30
]
EDGE_FLOATS = [
    *(float(v) for v in EDGE_INTS),
    0.5,
    -0.0,
    math.nextafter(2.0**63, 0),
    math.nextafter(2.0**64, 0),
    math.nextafter(2.0**53, math.inf),
    2.0**63 + 2048.0,
    -(2.0**63) - 2048.0,
    1e300,
    -1e300,
]
EDGE_TIMES = [
    dt.datetime(1, 1, 1),
    dt.datetime(1, 1, 1, 0, 0, 0, 1),
    dt.datetime(1677, 9, 21, 0, 12, 43, 145224),
    dt.datetime(1677, 9, 21, 0, 12, 43, 145225),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(1970, 1, 1),
    dt.datetime(2262, 4, 11, 23, 47, 16, 854775),
    dt.datetime(2262, 4, 11, 23, 47, 16, 854776),
    dt.datetime(2262, 4, 12),
    dt.datetime(9999, 12, 31),
    dt.datetime(9999, 12, 31, 23, 59, 59),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999000),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
]

edge_ints = st.one_of(
    st.sampled_from(EDGE_INTS),
    st.builds(operator.add, st.sampled_from(EDGE_INTS), st.integers(-3, 3)),
    st.integers(-(2**65), 2**65),
)
edge_floats = st.one_of(
    st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=False, allow_infinity=False),
)
edge_times = st.one_of(
    st.sampled_from(EDGE_TIMES),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)),
)


def _literal(v: int | float) -> str:
    return repr(v)


# -- the oracle: Kleene logic over Python's exact comparisons ---------------------------------


def _kind(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return "time"
    return "number"


def _compare(a: Any, op: str, b: Any) -> bool | None:
    ka, kb = _kind(a), _kind(b)
    if ka is None or kb is None or ka != kb:
        return None
    return OPS[op](a, b)


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


Row = dict[str, Any]
Oracle = Callable[[Row], "bool | None"]


@st.composite
def _clause(draw: st.DrawFn) -> tuple[str, Oracle]:
    number_attrs = ["i", "f"]
    time_attrs = ["t", "u"]
    shape = draw(st.sampled_from(["lit", "lit_left", "attr", "in", "between", "hour", "mixed"]))
    op = draw(st.sampled_from(list(OPS)))
    if shape in ("lit", "lit_left"):
        x = draw(st.sampled_from(number_attrs))
        lit = draw(st.one_of(edge_ints, edge_floats))
        if shape == "lit":
            return f"{x} {op} {_literal(lit)}", lambda r: _compare(r[x], op, lit)
        return f"{_literal(lit)} {op} {x}", lambda r: _compare(lit, op, r[x])
    if shape == "attr":
        x, y = draw(st.sampled_from([("i", "f"), ("f", "i"), ("t", "u"), ("u", "t"), ("i", "i")]))
        return f"{x} {op} {y}", lambda r: _compare(r[x], op, r[y])
    if shape == "in":
        x = draw(st.sampled_from(number_attrs))
        items = draw(st.lists(st.one_of(edge_ints, edge_floats), min_size=1, max_size=4))
        negated = draw(st.booleans())

        def member(r: Row) -> bool | None:
            found: bool | None = False
            for item in items:
                found = _or(found, _compare(r[x], "==", item))
            return _not(found) if negated else found

        listing = ", ".join(_literal(v) for v in items)
        return f"{x} {'not in' if negated else 'in'} [{listing}]", member
    if shape == "between":
        x = draw(st.sampled_from(number_attrs))
        lo, hi = sorted(draw(st.lists(edge_ints, min_size=2, max_size=2)))
        return (
            f"between({x}, {lo}, {hi})",
            lambda r: _and(_compare(r[x], ">=", lo), _compare(r[x], "<=", hi)),
        )
    if shape == "hour":
        x = draw(st.sampled_from(time_attrs))
        fn = draw(st.sampled_from(["hour", "weekday"]))
        n = draw(st.integers(0, 23))

        def part(r: Row) -> bool | None:
            v = r[x]
            if v is None:
                return None
            return (v.hour if fn == "hour" else v.weekday()) == n

        return f"{fn}({x}) == {n}", part
    # A number against a time: types that do not compare.
    return f"i {op} t", lambda r: _compare(r["i"], op, r["t"])


@st.composite
def _expression(draw: st.DrawFn, depth: int = 0) -> tuple[str, Oracle]:
    if depth >= 2 or draw(st.booleans()):
        return draw(_clause())
    how = draw(st.sampled_from(["and", "or", "not"]))
    a_text, a = draw(_expression(depth + 1))
    if how == "not":
        return f"not ({a_text})", lambda r: _not(a(r))
    b_text, b = draw(_expression(depth + 1))
    combine = _and if how == "and" else _or
    return f"({a_text}) {how} ({b_text})", lambda r: combine(a(r), b(r))


def _opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


ROW = st.fixed_dictionaries(
    {
        "i": _opt(edge_ints),
        "f": _opt(edge_floats),
        "t": _opt(edge_times),
        "u": _opt(edge_times),
    }
)


# -- the columns a user may hold ----------------------------------------------------------------


def _int_columns(values: list[int | None]) -> list[Any]:
    out: list[Any] = [list(values), np.array(values, dtype=object)]
    present = [v for v in values if v is not None]
    if all(0 <= v <= U64_MAX for v in present):
        out.append(pa.array(values, type=pa.uint64()))
        out.append(pd.Series(pd.array(values, dtype="UInt64")))
        if len(present) == len(values):
            out.append(np.array(values, dtype=np.uint64))
    if all(I64_MIN <= v <= I64_MAX for v in present):
        out.append(pa.array(values, type=pa.int64()))
        out.append(pd.Series(pd.array(values, dtype="Int64")))
        if len(present) == len(values):
            out.append(np.array(values, dtype=np.int64))
    return out


def _float_columns(values: list[float | None]) -> list[Any]:
    filled = [math.nan if v is None else v for v in values]
    return [
        list(values),
        np.array(filled, dtype=np.float64),
        pa.array(values, type=pa.float64()),
        pd.Series(pd.array(values, dtype="Float64")),
    ]


def _time_columns(values: list[dt.datetime | None]) -> list[Any]:
    present = [v for v in values if v is not None]
    aware = [None if v is None else v.replace(tzinfo=UTC) for v in values]
    out: list[Any] = [list(values), aware]
    units = ["us"]
    if all(v.microsecond % 1000 == 0 for v in present):
        units.append("ms")
    if all(v.microsecond == 0 for v in present):
        units.append("s")
    stamps = [None if v is None else np.datetime64(v, "us") for v in values]
    for unit in units:
        array = np.array(
            [np.datetime64("NaT") if s is None else s for s in stamps], dtype="datetime64[us]"
        ).astype(f"datetime64[{unit}]")
        out.append(array)
        out.append(pa.array(values, type=pa.timestamp(unit)))
        out.append(pa.array(aware, type=pa.timestamp(unit, tz="UTC")))
    out.append(pd.Series(np.array(stamps, dtype="datetime64[us]")))
    lo, hi = dt.datetime(1677, 9, 21, 0, 12, 44), dt.datetime(2262, 4, 11, 23, 47, 16)
    if all(lo <= v <= hi for v in present):
        out.append(pa.array(values, type=pa.timestamp("ns")))
        out.append(np.array(stamps, dtype="datetime64[us]").astype("datetime64[ns]"))
    return out


def _columns(rows: list[Row]) -> dict[str, list[Any]]:
    return {
        "i": _int_columns([r["i"] for r in rows]),
        "f": _float_columns([r["f"] for r in rows]),
        "t": _time_columns([r["t"] for r in rows]),
        "u": _time_columns([r["u"] for r in rows]),
    }


def _request_values(row: Row) -> list[Row]:
    """The row as a request, with each value also in the other types a server may hold."""
    out = [dict(row)]
    i, t = row["i"], row["t"]
    variant = dict(row)
    if i is not None and 0 <= i <= U64_MAX:
        variant["i"] = np.uint64(i)
    elif i is not None and I64_MIN <= i <= I64_MAX:
        variant["i"] = np.int64(i)
    if t is not None:
        variant["t"] = np.datetime64(t, "us")
    if row["f"] is not None:
        variant["f"] = np.float64(row["f"])
    out.append(variant)
    if t is not None and 1 < t.year < 9999:  # the same instant, 3 hours west of UTC
        west = dt.timezone(dt.timedelta(hours=-3))
        out.append({**row, "t": t.replace(tzinfo=UTC).astimezone(west)})
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=_expression(),
    rows=st.lists(ROW, min_size=1, max_size=6),
    picks=st.lists(st.integers(0, 20), min_size=4, max_size=4),
)
def test_mask_equals_matches_equals_python(
    expression: tuple[str, Oracle], rows: list[Row], picks: list[int]
) -> None:
    text, oracle = expression
    t = Targeting(text)
    expected = [oracle(r) for r in rows]
    for row, want in zip(rows, expected, strict=True):
        for request in _request_values(row):
            assert t.evaluate(request) is want, (text, request)
    columns = _columns(rows)
    chosen = {
        name: options[pick % len(options)]
        for (name, options), pick in zip(columns.items(), picks, strict=True)
    }
    got = t.mask(chosen).tolist()
    assert got == [w is True for w in expected], (
        text,
        rows,
        {k: type(v) for k, v in chosen.items()},
    )


# -- integers -----------------------------------------------------------------------------------


def test_uint64_is_not_rounded() -> None:
    t = Targeting("user_id == 18446744073709551615")
    near = 18446744073709551000  # the same double as 2**64 - 1
    assert float(near) == float(U64_MAX)
    assert t.matches({"user_id": near}) is False
    assert t.matches({"user_id": U64_MAX}) is True
    assert t.matches({"user_id": np.uint64(near)}) is False
    values = [near, U64_MAX, 2**63, 0]
    want = [False, True, False, False]
    for column in _int_columns(values):
        assert t.mask({"user_id": column}).tolist() == want, type(column)
    assert Targeting("user_id > 18446744073709551000").mask(
        {"user_id": np.array(values, dtype=np.uint64)}
    ).tolist() == [False, True, False, False]


@pytest.mark.parametrize("value", EDGE_INTS)
@pytest.mark.parametrize("op", list(OPS))
def test_int_against_every_edge_literal(value: int, op: str) -> None:
    for lit in [*EDGE_INTS, *EDGE_FLOATS]:
        t = Targeting(f"x {op} {_literal(lit)}")
        assert t.evaluate({"x": value}) is OPS[op](value, lit), (value, op, lit)


@given(a=edge_ints, b=edge_floats, op=st.sampled_from(list(OPS)))
@settings(max_examples=500, deadline=None)
def test_int_against_double_is_exact(a: int, b: float, op: str) -> None:
    want = OPS[op](a, b)
    t = Targeting(f"a {op} b")
    assert t.evaluate({"a": a, "b": b}) is want
    assert t.evaluate({"a": b, "b": a}) is OPS[op](b, a)
    for column in _int_columns([a]):
        assert t.mask({"a": column, "b": np.array([b])}).tolist() == [want]


@given(a=edge_ints, b=edge_ints, op=st.sampled_from(list(OPS)))
@settings(max_examples=500, deadline=None)
def test_integers_of_any_size_compare_exactly(a: int, b: int, op: str) -> None:
    want = OPS[op](a, b)
    assert Targeting(f"a {op} b").evaluate({"a": a, "b": b}) is want
    assert Targeting(f"a {op} {b}").evaluate({"a": a}) is want
    for column in _int_columns([a]):
        assert Targeting(f"a {op} {b}").mask({"a": column}).tolist() == [want]


@given(
    items=st.lists(st.one_of(edge_ints, edge_floats), max_size=6),
    x=st.one_of(edge_ints, edge_floats),
)
@settings(max_examples=300, deadline=None)
def test_membership_is_exact(items: list[int | float], x: int | float) -> None:
    want = any(x == item for item in items)
    named = Targeting("x in @items", lists={"items": items})
    assert named.evaluate({"x": x}) is want
    if items:
        inline = Targeting(f"x in [{', '.join(_literal(v) for v in items)}]")
        assert inline.evaluate({"x": x}) is want
    if isinstance(x, int):
        for column in _int_columns([x]):
            assert named.mask({"x": column}).tolist() == [want]


def test_big_integers_are_canonical() -> None:
    # A literal beyond 64 bits is an exact integer: printed back as written.
    t = Targeting("x == 100000000000000000000000000001 or x < -18446744073709551617")
    assert str(t) == "x == 100000000000000000000000000001 or x < -18446744073709551617"
    assert t.matches({"x": 10**29 + 1})
    assert not t.matches({"x": 10**29})
    assert not t.matches({"x": 1e29})
    assert t.matches({"x": -(2**64) - 2})
    assert not t.matches({"x": -(2**64) - 1})
    huge = 7**5000  # beyond the 4300 digits that str() refuses by default
    assert Targeting("x > 1e308").matches({"x": huge})
    assert Targeting("x == y").matches({"x": huge, "y": 7**5000})
    assert not Targeting("x == y").matches({"x": huge, "y": huge + 1})
    assert Targeting("x < y").matches({"x": huge, "y": huge + 1})


# -- timestamps ---------------------------------------------------------------------------------


def test_timestamps_after_2262() -> None:
    t = Targeting("expires > now")
    now = dt.datetime(2024, 5, 1)
    forever = dt.datetime(9999, 12, 31)
    assert t.matches({"expires": forever, "now": now}) is True
    assert t.matches({"expires": np.datetime64(forever, "us"), "now": now}) is True
    assert t.matches({"expires": np.datetime64("9999-12-31", "D"), "now": now}) is True
    for unit in ("s", "ms", "us"):
        column = np.array(["9999-12-31", "2000-01-01", "0001-01-01"], dtype=f"datetime64[{unit}]")
        now_column = np.array(["2024-05-01"] * 3, dtype=f"datetime64[{unit}]")
        assert t.mask({"expires": column, "now": now_column}).tolist() == [True, False, False]
        arrow = pa.array(column)
        assert t.mask({"expires": arrow, "now": now_column}).tolist() == [True, False, False]
    assert Targeting("weekday(t) == 4 and hour(t) == 23").matches(
        {"t": dt.datetime(9999, 12, 31, 23)}
    )
    assert Targeting("weekday(t) == 0").matches({"t": dt.datetime(1, 1, 1)})
    dates = pa.array([dt.date(9999, 12, 31), dt.date(1, 1, 1)], type=pa.date32())
    assert t.mask({"expires": dates, "now": [now, now]}).tolist() == [True, False]
    assert t.mask({"expires": dates.cast(pa.date64()), "now": [now, now]}).tolist() == [True, False]


def test_nanoseconds_are_kept() -> None:
    a = np.array(["2024-01-01T00:00:00.000000001", "2024-01-01"], dtype="datetime64[ns]")
    b = np.array(["2024-01-01", "2024-01-01"], dtype="datetime64[ns]")
    assert Targeting("a > b").mask({"a": a, "b": b}).tolist() == [True, False]
    assert Targeting("a > b").matches({"a": a[0], "b": b[0]}) is True
    assert Targeting("a == b").matches({"a": a[0], "b": b[0].astype("datetime64[us]")}) is False
    late = np.datetime64("9999-12-31T23:59:59.999999", "us")
    assert Targeting("a > b").matches({"a": late, "b": np.datetime64("2262-04-12", "ns")})


# -- text with NULs -----------------------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from(["a", "b", "\x00", "é", "\U0001f600"]), max_size=5)


@given(values=st.lists(texts, min_size=1, max_size=6), probe=texts)
@settings(max_examples=200, deadline=None)
def test_fixed_width_text_with_nul(values: list[str], probe: str) -> None:
    escaped = probe.replace("\x00", "\\0").encode("ascii", "backslashreplace").decode()
    for expr in (
        f's == "{escaped}"',
        f's < "{escaped}"',
        f'startswith(s, "{escaped}")',
        "len(s) == 2",
    ):
        t = Targeting(expr)
        for arr in (
            np.array(values, dtype=str),
            np.array([v.encode() for v in values], dtype=bytes),
        ):
            rows = [t.matches({"s": v}) for v in arr]
            assert t.mask({"s": arr}).tolist() == rows, (expr, arr)
            assert t.mask(pd.DataFrame({"s": arr})).tolist() == rows, (expr, arr)


def test_fixed_width_text_lone_surrogate() -> None:
    arr = np.array(["a\ud800", "a", "a\x00b"], dtype=str)
    t = Targeting('s != "a" or s is null')
    assert (
        t.mask({"s": arr}).tolist()
        == [t.matches({"s": v}) for v in arr]
        == [
            False,
            False,
            True,
        ]
    )


# -- messages with NULs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "column"),
    [
        ("x == 1 and \x00 tail", 12),
        ('x == "a\x00b" and', 15),
        ("`a\x00b` == and y", 10),
        ('matches(x, "a\x00(")', 12),
    ],
)
def test_error_messages_keep_text_after_nul(expression: str, column: int) -> None:
    with pytest.raises(TargetingSyntaxError) as info:
        Targeting(expression)
    error = info.value
    message = str(error)
    assert "\x00" not in message
    assert error.column == column
    assert f"at line 1, column {column}" in message
    assert message.endswith(error.excerpt)
    text, caret = error.excerpt.split("\n")
    assert text.strip() == expression.replace("\x00", "\\x00")
    # The caret sits under the character at `column`, counting a shown NUL as its 4 characters.
    shown = expression[: column - 1].replace("\x00", "\\x00")
    assert caret.index("^") - 2 == len(shown)
