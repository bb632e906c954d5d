"""`import trafficsplit` and the serving path need only numpy and PyYAML.

Each check runs in a fresh interpreter of this environment. Optional libraries are made
unimportable by a `sys.meta_path` finder installed before trafficsplit is imported, as if they
were not installed; a call that needs one must then raise an ImportError naming the extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "data" / "config" / "example.yaml"
OPTIONAL = ("pandas", "pyarrow", "polars", "matplotlib", "opentelemetry", "scipy", "redis")

BLOCKER = """
import sys

class _NotInstalled:
    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled(BLOCKED))
"""

# The serving path: per-request assignment, flags, targeting and JSONL exposures. Prints what
# it decided and which optional libraries ended up imported.
SERVING = """
import json, pathlib, sys, tempfile
import trafficsplit as ts

exp = ts.Experiment("ranker-v2", {"control": 50, "treatment": 50})
a = exp.assign("user-42")
t = ts.Targeting('country in ["US", "CA"] and semver(app_version) >= "2.3.0"')
matches = [
    t.matches({"country": "US", "app_version": "2.10.1"}),
    t.matches({"country": "US", "app_version": "2.2.9"}),
    t.matches({"country": "FR", "app_version": "3.0.0"}),
]
folder = tempfile.mkdtemp()
sp = ts.Splitter(EXAMPLE, exposures=ts.JsonlSink(folder))
s = sp.assign("search-ui", "user-3")
flag = sp.flag("new-reranker", "user-7", {"tier": "internal"})
sp.close()
records = [
    json.loads(line)
    for f in sorted(pathlib.Path(folder).glob("*.jsonl"))
    for line in f.read_text().splitlines()
]
print(json.dumps({
    "arm": a.arm, "bucket": a.bucket, "matches": matches,
    "splitter": [s.arm, s.reason, s.bucket], "flag": flag,
    "logged": [[r["experiment"], r["unit"], r["arm"]] for r in records if r["arm"]],
    "loaded": sorted(m for m in OPTIONAL if m in sys.modules),
}))
"""


def _run(code: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    prelude = f"BLOCKED = {list(blocked)!r}\nEXAMPLE = {str(EXAMPLE)!r}\nOPTIONAL = {OPTIONAL!r}\n"
    if blocked:
        prelude += BLOCKER
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _serving(blocked: tuple[str, ...] = ()) -> dict:
    proc = _run(SERVING, blocked)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def reference() -> dict:
    return _serving()


def test_import_and_serving_path_load_no_optional_library(reference: dict) -> None:
    assert reference["loaded"] == []
    assert reference["arm"] in ("control", "treatment")
    assert reference["matches"] == [True, False, False]
    assert reference["flag"] is True  # the rule for tier == "internal"
    arm, reason, _ = reference["splitter"]
    assert reason == "assigned"
    assert ["search-ui", "user-3", arm] in reference["logged"]


def test_public_names_load_on_first_use() -> None:
    proc = _run(
        """
        import json, sys
        import trafficsplit as ts
        lazy = ["trafficsplit.stats", "trafficsplit.analysis", "trafficsplit.bandit"]
        before = [name in sys.modules for name in lazy]
        mean = ts.stats.Moments.from_values([1.0, 2.0, 6.0]).mean
        after = [name in sys.modules for name in lazy]
        print(json.dumps({
            "before": before, "after": after, "mean": mean,
            "dir": sorted(set(ts.__all__) - set(dir(ts))),
            "analyze": ts.analyze.__module__, "bandit": ts.bandit.__name__,
            "loaded": sorted(x for x in OPTIONAL if x in sys.modules),
        }))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "before": [False, False, False],
        "after": [True, False, False],
        "mean": 3.0,
        "dir": [],
        "analyze": "trafficsplit.analysis",
        "bandit": "trafficsplit.bandit",
        "loaded": [],
    }


def test_unknown_attribute_is_an_attribute_error() -> None:
    import trafficsplit as ts

    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        ts.not_a_name  # noqa: B018


# What needs each library, and the message its absence gives.
NEEDS = {
    "pandas": [
        (
            "ts.Experiment('e', {'a': 50, 'b': 50}).assign_batch([1, 2]).to_pandas()",
            "BatchAssignment.to_pandas needs pandas: pip install 'trafficsplit[pandas]'",
        ),
        (
            "ts.analyze({'y': {'control': M.from_values([1.0, 2.0, 3.0]), "
            "'b': M.from_values([2.0, 3.0, 5.0])}}, metrics='y').summary()",
            "Analysis.summary needs pandas: pip install 'trafficsplit[pandas]'",
        ),
        ("ts.read_exposures(EXAMPLE)", "read_exposures needs pandas"),
        ("M.from_values([1.0, None])", "needs pandas: pip install 'trafficsplit[pandas]'"),
    ],
    "pyarrow": [
        (
            "ts.Experiment('e', {'a': 50, 'b': 50}).assign_batch([1, 2]).to_arrow()",
            "BatchAssignment.to_arrow needs pyarrow: pip install 'trafficsplit[arrow]'",
        ),
        (
            "ts.ParquetSink(tempfile.mkdtemp())",
            "ParquetSink needs pyarrow: pip install 'trafficsplit[arrow]'",
        ),
    ],
    "matplotlib": [
        (
            "ts.analyze({'y': {'control': M.from_values([1.0, 2.0, 3.0]), "
            "'b': M.from_values([2.0, 3.0, 5.0])}}, metrics='y').plot()",
            "Analysis.plot needs matplotlib: pip install 'trafficsplit[plot]'",
        ),
    ],
    "opentelemetry": [
        (
            "ts.OpenTelemetrySink()",
            "OpenTelemetrySink needs opentelemetry: pip install 'trafficsplit[otel]'",
        ),
    ],
    "redis": [
        (
            "ts.sticky.RedisStickyStore(url='redis://127.0.0.1:6379/0')",
            "RedisStickyStore needs redis: pip install 'trafficsplit[redis]'",
        ),
    ],
    # Nothing imports polars: its objects arrive from the caller, who has it.
    "polars": [],
}


@pytest.mark.parametrize("library", sorted(NEEDS))
def test_without_the_library_serving_works_and_its_calls_name_the_extra(
    library: str, reference: dict
) -> None:
    result = _serving((library,))
    assert result == reference  # the same decisions, bucket for bucket

    cases = NEEDS[library]
    code = "import tempfile\nimport trafficsplit as ts\nM = ts.stats.Moments\nout = []\n"
    for call, _ in cases:
        code += (
            f"try:\n    {call}\n    out.append(None)\n"
            "except ImportError as e:\n    out.append(str(e))\n"
        )
    code += "import json\nprint(json.dumps(out))\n"
    proc = _run(code, (library,))
    assert proc.returncode == 0, proc.stderr
    messages = json.loads(proc.stdout)
    for (call, expected), message in zip(cases, messages, strict=True):
        assert message is not None, f"{call} did not raise without {library}"
        assert expected in message, (call, message)


@pytest.mark.parametrize("library", sorted(NEEDS))
def test_validate_and_plan_run_without_the_library(library: str) -> None:
    proc = _run(
        f"""
        import sys
        from trafficsplit.cli import main
        code = main(["validate", {str(EXAMPLE)!r}])
        code2 = main(["plan", {str(EXAMPLE)!r}, {str(EXAMPLE)!r}])
        print("exit", code, code2, sorted(m for m in OPTIONAL if m in sys.modules))
        """,
        (library,),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ok: 4 experiments, 1 flags, version ")
    assert lines[-1] == "exit 0 0 []"


def test_console_script_validate_loads_no_optional_library() -> None:
    script = Path(sys.executable).with_name("trafficsplit")
    if not script.exists():
        pytest.skip("no trafficsplit console script next to this interpreter")
    proc = subprocess.run(
        [str(script), "validate", str(EXAMPLE)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: 4 experiments, 1 flags, version ")
    proc = _run(
        f"""
        import runpy, sys
        sys.argv = ["trafficsplit", "validate", {str(EXAMPLE)!r}]
        try:
            runpy.run_module("trafficsplit", run_name="__main__")
        except SystemExit:
            pass
        print(sorted(m for m in OPTIONAL if m in sys.modules))
        """
    )
    assert proc.stdout.splitlines()[-1] == "[]"


def test_demo_without_pandas_assigns_and_names_the_extra_for_its_analysis() -> None:
    proc = _run(
        """
        from trafficsplit.cli import main
        print("exit", main(["demo", "--users", "2000"]))
        """,
        ("pandas",),
    )
    assert proc.returncode == 0, proc.stderr
    assert "sample-ratio check" in proc.stdout
    assert (
        "analysis skipped: the demo's analysis needs pandas: pip install 'trafficsplit[pandas]'"
        in proc.stdout
    )


def test_polars_frame_without_pyarrow_names_the_polars_extra() -> None:
    pytest.importorskip("polars")
    proc = _run(
        """
        import polars as pl
        import trafficsplit as ts
        df = pl.DataFrame({"country": ["US", "FR"]})
        for call in (
            lambda: ts.Targeting('country == "US"').mask(df),
            lambda: ts.Splitter(EXAMPLE).assign_frame(df, "country"),
        ):
            try:
                call()
                print("no error")
            except ImportError as e:
                print(e)
        """,
        ("pyarrow",),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Targeting.mask needs pyarrow: pip install 'trafficsplit[polars]'",
        "Splitter.assign_frame needs pyarrow: pip install 'trafficsplit[polars]'",
    ]


def test_inputs_are_checked_while_another_thread_imports_pandas() -> None:
    """A library another thread is still importing is not taken for loaded: its classes may
    not exist yet (pyarrow imports pandas lazily on a backfill's reading thread while its main
    thread checks its inputs, which raised AttributeError on a half-made pandas)."""
    code = textwrap.dedent(
        """
        import sys, threading
        import pyarrow as pa
        from trafficsplit._frames import FrameInput
        from trafficsplit._optional import loaded
        # built from buffers: pa.array and pa.table would import pandas themselves
        offsets = pa.py_buffer(bytes([0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]))
        units = pa.StringArray.from_buffers(2, offsets, pa.py_buffer(b"ab"))
        table = pa.Table.from_arrays([units], names=["u"])
        assert "pandas" not in sys.modules
        sys.setswitchinterval(1e-6)  # hand the GIL back and forth as often as possible
        importer = threading.Thread(target=lambda: __import__("pandas"))
        importer.start()
        calls = halfway = 0
        while importer.is_alive():
            halfway += "pandas" in sys.modules and loaded("pandas") is None
            assert FrameInput(table, "t").kind == "arrow"
            calls += 1
        importer.join()
        assert loaded("pandas") is sys.modules["pandas"]
        assert halfway > 0, (calls, halfway)  # the check did run while pandas was half-made
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
