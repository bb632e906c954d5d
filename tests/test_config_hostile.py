"""Configuration files from people who make mistakes and people who attack: every one gives a
ConfigValidationError naming the file and what is wrong, in bounded time and memory."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import trafficsplit as ts
from trafficsplit.config.files import MAX_DEPTH, MAX_VALUES

GOOD = """experiments:
  - key: e
    arms: {a: 50, b: 50}
"""


def refused(path: Path, pattern: str) -> ts.ConfigValidationError:
    with pytest.raises(ts.ConfigValidationError, match=pattern) as info:
        ts.load_config(path)
    assert all(issue.file == str(path) for issue in info.value.issues)
    return info.value


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return (
        "experiments:\n  - key: e\n    arms: {a: 50, b: 50}\n"
        f"    description: {{{', '.join(lines)}}}\n"
    )


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    f = tmp_path / "laughs.yaml"
    f.write_text(billion_laughs(10))  # 10^9 values once expanded
    start = time.monotonic()
    refused(f, r"stands for more than 1,000,000 values once its YAML aliases are expanded")
    assert time.monotonic() - start < 2
    # A few aliases are fine.
    f.write_text(billion_laughs(3))
    assert ts.load_config(f).experiments["e"].experiment.arm_names == ("a", "b")


def test_hot_reload_keeps_serving_through_a_billion_laughs(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text(GOOD)
    with ts.Splitter.from_file(f) as sp:
        f.write_text(billion_laughs(10))
        start = time.monotonic()
        assert sp.reload() is False
        assert time.monotonic() - start < 2
        assert sp.reload_errors == 1 and sp.assign("e", "u1").reason == "assigned"


def test_recursive_aliases_and_deep_nesting(tmp_path: Path) -> None:
    f = tmp_path / "loop.yaml"
    f.write_text("experiments: &x\n  - key: e\n    arms: {a: 100}\n    description: *x\n")
    refused(f, "refers to a mapping or list that contains it")
    for suffix, text in (
        (".yaml", "description: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        (".json", '{"d": ' + "[" * 10_000 + "]" * 10_000 + "}"),
        (".yaml", "d: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"),
    ):
        deep = tmp_path / f"deep{suffix}"
        deep.write_text(text)
        # libyaml reports its own nesting limit (1,000 levels) with the line and column.
        refused(deep, f"nested more than {MAX_DEPTH} levels deep|exceeded maximum nesting")


def test_a_fifo_named_like_a_configuration_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def load() -> None:
        try:
            ts.load_config(fifo)
        except BaseException as exc:  # the error is checked below, in the test's thread
            done.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # unblock the reader before failing
        with open(fifo, "w") as w:
            w.write("")
        pytest.fail("load_config blocked on a FIFO")
    assert isinstance(done[0], ts.ConfigValidationError)
    assert "not a regular file" in str(done[0])


def test_bad_dates_name_the_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "dates.yaml"
    f.write_text(GOOD + "    start: 2026-13-01\n")
    error = refused(f, r"invalid YAML at line 4, column 12: '2026-13-01' is not a valid time")
    assert "month must be in 1..12" in str(error)


def test_merge_keys_are_standard_yaml(tmp_path: Path) -> None:
    f = tmp_path / "merge.yaml"
    f.write_text(
        "defaults: &defaults\n"
        "  arms: {a: 50, b: 50}\n"
        "  exposure: 0.5\n"
        "experiments:\n"
        "  - <<: *defaults\n"
        "    key: one\n"
        "  - <<: *defaults\n"
        "    key: two\n"
        "    exposure: 0.25\n"
    )
    with pytest.raises(ts.ConfigValidationError, match=r"defaults: unknown key"):
        ts.load_config(f)  # the anchor's own top-level key is still not a section
    f.write_text(
        "experiments:\n"
        "  - &one\n"
        "    key: one\n"
        "    arms: {a: 50, b: 50}\n"
        "    exposure: 0.5\n"
        "  - <<: *one\n"
        "    key: two\n"
        "    exposure: 0.25\n"
    )
    snapshot = ts.load_config(f)
    assert snapshot.experiments["one"].experiment.exposure == 0.5
    assert snapshot.experiments["two"].experiment.exposure == 0.25
    assert snapshot.experiments["two"].experiment.arm_names == ("a", "b")
    # Keys repeated outside a merge are still refused.
    f.write_text("experiments:\n  - key: a\n    key: b\n    arms: {a: 100}\n")
    refused(f, r"key 'key' is repeated \(first at line 2\)")


def test_oversized_values_count(tmp_path: Path) -> None:
    # Just over the limit without any alias: a long flat list.
    f = tmp_path / "big.json"
    f.write_text('{"description": [' + ", ".join(["0"] * MAX_VALUES) + "]}")
    refused(f, "stands for more than")


# -- hot reload takes a file only once it is stable ------------------------------------------

TWO = (
    GOOD
    + """  - key: f
    arms: {a: 50, b: 50}
"""
)


def test_a_rewrite_in_progress_is_not_taken(tmp_path: Path) -> None:
    three = TWO + "  - key: g\n    arms: {a: 50, b: 50}\n"
    f = tmp_path / "config.yaml"
    f.write_text(TWO)
    sp = ts.Splitter.from_file(f)  # the watcher's polls are made by hand below
    # A non-atomic rewrite (cat > file, cp, most editors) caught at an entry boundary: the
    # part written so far is valid YAML with two experiments fewer.
    with open(f, "w") as w:
        w.write(GOOD)
        w.flush()
        assert sp._poll() is False  # changed: seen once, not taken
        assert set(sp.snapshot.experiments) == {"e", "f"}
        w.write(three[len(GOOD) :])
    later = time.time_ns() + 10**9
    os.utime(f, ns=(later, later))
    assert sp._poll() is False  # changed again since the last poll: still not taken
    assert set(sp.snapshot.experiments) == {"e", "f"}
    assert sp._poll() is True  # unchanged across two polls: taken whole
    assert set(sp.snapshot.experiments) == {"e", "f", "g"}
    assert sp.reload_errors == 0
    # An atomic rename is taken at the second poll too.
    tmp = tmp_path / ".config.yaml.tmp"
    tmp.write_text(GOOD)
    os.replace(tmp, f)
    assert sp._poll() is False and sp._poll() is True
    assert set(sp.snapshot.experiments) == {"e"}
    sp.close()


# -- times: one range for every way a time arrives --------------------------------------------


@pytest.mark.parametrize("start", ["9.3e+12", "1.0e+30", "-1.0e+12", "253402300800"])
def test_times_out_of_range_are_configuration_problems(tmp_path: Path, start: str) -> None:
    f = tmp_path / "times.yaml"
    f.write_text(GOOD + f"    start: {start}\n")
    refused(f, r"experiments\[0\]\.start: expected a time")


def test_times_out_of_range_as_arguments_say_so() -> None:
    e = ts.Experiment("e", {"a": 50, "b": 50})
    hint = "epoch times are seconds: divide milliseconds by 1e3"
    for at in (10**30, 1.0e30, 1_700_000_000_000):  # the last: milliseconds by mistake
        with pytest.raises(ts.ConfigError, match=f"at = .* is out of range: .*{hint}"):
            e.assign("u", at=at)
    with pytest.raises(ts.ConfigError, match=r"at\[1\] = 1700000000000000 is out of range"):
        e.assign_batch(["u", "v"], at=np.array([1_700_000_000, 1_700_000_000_000_000]))
    with pytest.raises(ts.ConfigError, match=r"at\[0\] = .* is out of range"):
        e.assign_batch(["u"], at=np.array([np.iinfo(np.int64).max]))
    # The last representable day works, as a datetime64 and as text.
    last = np.datetime64("9999-12-31T23:59:59")
    assert e.assign("u", at=last) == e.assign("u", at="9999-12-31T23:59:59Z")
    assert e.assign_batch(["u"], at=np.array([last])).reason.tolist() == [0]


# -- arguments that used to escape as bare Python or pybind11 errors -------------------------


def test_from_dict_and_arm_names_and_thread_counts_say_what_is_wrong() -> None:
    with pytest.raises(ts.ConfigError, match=r"from_dict: missing 'key', 'arms'"):
        ts.Experiment.from_dict({})
    with pytest.raises(ts.ConfigError, match=r"arms\[0\] must be a mapping with 'name'"):
        ts.Experiment.from_dict({"key": "e", "arms": [{"weight": 100}]})
    with pytest.raises(ts.ConfigError, match=r"arms\[1\]\.name must be valid Unicode"):
        ts.Experiment("e", {"a": 50, "b\ud800": 50})
    e = ts.Experiment("e", {"a": 50, "b": 50})
    assert ts.Experiment.from_dict(e.to_dict()) == e
    for threads in (2**40, 1025, 0):
        with pytest.raises(ts.ArgumentError, match=r"threads must be None \(all cores\)"):
            e.assign_batch(["u"], threads=threads)
    assert e.assign_batch(["u"], threads=1024).arm_index.tolist() == [e.assign("u").arm_index]


def test_named_lists_must_be_collections() -> None:
    for bad, kind in ((None, "NoneType"), ("user-1", "str"), (b"ab", "bytes"), (3, "int")):
        with pytest.raises(ts.ConfigError, match=rf"lists\['l'\] must be a list .* got {kind}"):
            ts.Targeting("user_id in @l", {"l": bad})
    t = ts.Targeting("user_id in @l", {"l": ("user-1", "user-2")})
    assert t.matches({"user_id": "user-1"}) and not t.matches({"user_id": "u"})


def test_a_prerequisite_value_of_the_wrong_type_is_a_problem() -> None:
    flags = [
        {"key": "f", "type": "bool", "default": False},
        {"key": "n", "type": "number", "default": 0},
        {
            "key": "g",
            "type": "bool",
            "default": False,
            "prerequisites": [{"flag": "f", "value": "yes"}, {"flag": "n", "value": True}],
        },
    ]
    with pytest.raises(ts.ConfigValidationError) as info:
        ts.parse_config({"flags": flags})
    assert [(i.path, i.message) for i in info.value.issues] == [
        (
            "flags[2].prerequisites[0].value",
            "flag 'f' is a bool flag; str 'yes' can never be its value",
        ),
        (
            "flags[2].prerequisites[1].value",
            "flag 'n' is a number flag; bool True can never be its value",
        ),
    ]
    flags[2]["prerequisites"] = [{"flag": "f", "value": True}, {"flag": "n", "value": 2}]
    assert ts.parse_config({"flags": flags}).flags["g"].prerequisites == (("f", True), ("n", 2))


def test_deep_payloads_given_in_python_are_refused_clearly() -> None:
    deep: object = 0
    for _ in range(900):
        deep = [deep]
    with pytest.raises(ts.ConfigError, match=r"arms\[0\]\.payload .* is nested more than 200"):
        ts.Experiment("e", [ts.Arm("a", 100, deep)])
    shallow: object = 0
    for _ in range(150):
        shallow = {"x": shallow}
    assert ts.Experiment("e", [ts.Arm("a", 100, shallow)]).assign("u").payload is not None
