"""Python code that runs while the core reads Python objects cannot crash the process.

Converting a unit id or an attribute value can call back into Python (``__index__`` of an
``np.integer`` subclass, a ``__class__`` property seen by ``isinstance``, ``utcoffset`` of a
``datetime`` subclass, ``__str__`` of a list name). Each case here runs such a callback that
empties or grows the very list or dict being read, in a child process, so that a crash fails
the test instead of ending pytest. The child must exit normally and print the right result, or
raise the clear error it names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PRELUDE = """
import datetime, json, sys
import numpy as np
import trafficsplit as ts
from trafficsplit._core import targeting as core_targeting

victim = []
ids = ["unit-%06d-%s" % (i, "x" * 40) for i in range(2000)]

class ClearingIndex(np.int64):
    def __index__(self):
        victim.clear()
        return 7

class GrowingIndex(np.int64):
    def __index__(self):
        victim.extend(["y" * 64] * 20000)  # forces the list's items to move
        return 7

class ClearingClass:
    @property
    def __class__(self):
        victim.clear()
        return np.int64

class ClearingFloat(np.float32):  # not a float subclass: read through __float__
    def __float__(self):
        victim.clear()
        return float("nan")

class ClearingOffset(datetime.datetime):
    def utcoffset(self):
        victim.clear()
        return None

def report(value):
    print(json.dumps(value))
"""


def run(body: str) -> object:
    """Runs PRELUDE + body in a child; returns what it printed as JSON (one line)."""
    code = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} (negative = killed by that signal)\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_unit_whose_index_empties_the_list_raises_runtime_error() -> None:
    out = run(
        """
        victim[:] = [ClearingIndex(1)] + ids
        try:
            ts.hash64_batch(victim, "salt")
        except RuntimeError as e:
            report(["RuntimeError", str(e)])
        else:
            report(["no error"])
        """
    )
    assert out[0] == "RuntimeError"
    assert "changed size while it was read" in out[1]
    assert "2001 rows at the start, 0 at row 1" in out[1]


def test_a_unit_whose_index_grows_the_list_hashes_the_rows_it_started_with() -> None:
    out = run(
        """
        victim[:] = ids[:100] + [GrowingIndex(1)] + ids[100:]
        got = ts.hash64_batch(victim, "salt")
        want = ts.hash64_batch(ids[:100] + [7] + ids[100:], "salt")
        report([len(got), len(victim), [int(v) for v in got], [int(v) for v in want]])
        """
    )
    rows, grown, got, want = out
    assert rows == 2001
    assert grown == 2001 + 20000
    assert got == want


def test_assigning_a_list_that_a_unit_grows_gives_the_arms_of_the_plain_list() -> None:
    out = run(
        """
        e = ts.Experiment("e", arms={"a": 50, "b": 30, "c": 20})
        victim[:] = ids[:300] + [GrowingIndex(1)] + ids[300:]
        got = e.assign_batch(victim)
        want = e.assign_batch(ids[:300] + [7] + ids[300:])
        report([[str(a) for a in got.arm], [str(a) for a in want.arm],
                [int(b) for b in got.bucket], [int(b) for b in want.bucket]])
        """
    )
    assert out[0] == out[1]
    assert out[2] == out[3]
    assert set(out[0]) == {"a", "b", "c"}


def test_assigning_a_list_that_a_unit_empties_raises_runtime_error() -> None:
    out = run(
        """
        e = ts.Experiment("e", arms={"a": 50, "b": 50})
        victim[:] = ids[:10] + [ClearingIndex(1)] + ids[10:]
        try:
            e.assign_batch(victim)
        except RuntimeError as e:
            report(["RuntimeError", str(e)])
        else:
            report(["no error"])
        """
    )
    assert out == [
        "RuntimeError",
        "the sequence of unit ids changed size while it was read "
        "(2001 rows at the start, 0 at row 11)",
    ]


def test_a_class_property_that_empties_the_list_is_refused_by_name() -> None:
    # isinstance() reads __class__; the object is refused (it has no __index__) with its own
    # type in the message, read from an object that is still alive.
    out = run(
        """
        victim[:] = [ClearingClass()] + ids
        try:
            ts.hash64_batch(victim, "salt")
        except TypeError as e:
            report([type(e).__name__, str(e)])
        """
    )
    assert out[0] == "TypeError"
    assert "ClearingClass" in out[1]


def test_a_float_subclass_that_empties_the_list_is_a_missing_unit_then_an_error() -> None:
    out = run(
        """
        victim[:] = ["first", ClearingFloat(0.5)] + ids
        try:
            ts.hash64_batch(victim, "salt")
        except RuntimeError as e:
            report(["RuntimeError", str(e)])
        """
    )
    assert out[0] == "RuntimeError"
    assert "at row 2" in out[1]


def test_attribute_values_whose_conversion_empties_the_list_raise_runtime_error() -> None:
    # The binding reads the list it is given; Targeting.mask hands it a private copy, so the
    # binding is called directly here.
    out = run(
        """
        results = []
        for first in (ClearingOffset(2020, 1, 1), ClearingIndex(3)):
            victim[:] = [first] + ids
            try:
                core_targeting.AttributeColumn.from_objects(victim)
            except RuntimeError as e:
                results.append(str(e))
        report(results)
        """
    )
    assert (
        out
        == [
            "the attribute values changed size while they were read "
            "(2001 rows at the start, 0 at row 1)"
        ]
        * 2
    )


def test_attribute_values_whose_conversion_grows_the_list_are_read_whole() -> None:
    out = run(
        """
        victim[:] = ["US"] * 50 + [GrowingIndex(1)] + ["CA"] * 50
        column = core_targeting.AttributeColumn.from_objects(victim)
        t = ts.Targeting('country == "US"')
        mask = t._compiled.mask([column], len(column), 1)
        report([len(column), [bool(v) for v in mask]])
        """
    )
    assert out[0] == 101
    assert out[1] == [True] * 50 + [False] * 51


def test_list_names_whose_str_empties_the_lists_compile() -> None:
    # Targeting validates and copies lists; the binding takes any dict, so it is called directly.
    out = run(
        """
        class Name:
            def __str__(self):
                lists.clear()
                return "countries"
        lists = {Name(): ["US", "CA"] + ["z" * 40] * 1000, "other": [ClearingIndex(1)] * 3}
        t = core_targeting.CompiledTargeting("country in @countries", lists)
        report([t.matches({"country": "CA"}), t.matches({"country": "FR"}), len(lists)])
        """
    )
    assert out == [True, False, 0]


def test_list_items_whose_index_empties_the_lists_compile() -> None:
    out = run(
        """
        lists = {}
        class Clearing(np.int64):
            def __index__(self):
                lists.clear()
                return 5
        lists["small"] = [Clearing(1), 6]
        lists["big"] = ["q" * 40] * 1000
        t = core_targeting.CompiledTargeting("n in @small and s in @big", lists)
        report([t.matches({"n": 5, "s": "q" * 40}), t.matches({"n": 7, "s": "q" * 40})])
        """
    )
    assert out == [True, False]
