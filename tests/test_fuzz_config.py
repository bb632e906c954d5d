"""The configuration loader under fuzzing: any text or YAML-like structure gives a Snapshot or
ConfigValidationError / ConfigError, never another exception, and in bounded time.

Two engines: atheris (cpp/fuzz/fuzz_config.py, coverage-guided, from the seed corpus in
cpp/fuzz/corpus/fuzz_config) in a child process, and hypothesis in this one.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "cpp" / "fuzz" / "fuzz_config.py"
CORPUS = ROOT / "cpp" / "fuzz" / "corpus" / "fuzz_config"
ACCEPTED = (ts.ConfigValidationError, ts.ConfigError)

KEYS = st.sampled_from(
    ["experiments", "flags", "layers", "holdouts", "rollouts", "key", "arms", "weight",
     "payload", "exposure", "salt", "buckets", "targeting", "lists", "overrides", "status",
     "start", "end", "history", "weights", "layer", "layer_share", "percent", "steps", "hold",
     "type", "default", "rules", "when", "value", "rollout", "a", "b"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["control", "1h", 'x == "y"', "2026-11-20T00:00:00Z", "xxh3"])
    | st.integers(0, 100)
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


def compiles_or_refuses(call: Any, *args: Any) -> None:
    try:
        snapshot = call(*args)
    except ACCEPTED:
        return
    assert isinstance(snapshot, ts.Snapshot)


@settings(max_examples=150, deadline=2000)
@given(DOCUMENTS)
def test_any_structure_compiles_or_is_refused(document: Any) -> None:
    compiles_or_refuses(ts.parse_config, document)
    if isinstance(document, dict):
        experiments = {"experiments": [{"key": "e", "arms": {"a": 50, "b": 50}}]}
        compiles_or_refuses(ts.parse_config, {**experiments, **document})


@settings(max_examples=150, deadline=2000)
@given(st.one_of(DOCUMENTS.map(lambda d: yaml.safe_dump(d)), st.text(max_size=300)))
def test_any_file_text_loads_or_is_refused(tmp_path_factory: Any, text: str) -> None:
    folder = tmp_path_factory.mktemp("config")
    for name in ("config.yaml", "config.json"):
        path = folder / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        compiles_or_refuses(ts.load_config, path)


def test_the_seed_corpus_holds_valid_configurations() -> None:
    # The seeds start the fuzzer from configurations that compile, so it mutates real ones.
    files = sorted(CORPUS.iterdir())
    assert len(files) >= 5
    for path in files:
        assert isinstance(ts.load_config(path), ts.Snapshot), path


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris (scripts/requirements-dev.txt)"
)
def test_atheris_finds_nothing_in_a_fixed_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, tmp_path / "seeds")
    corpus.mkdir()
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "-runs=400", "-seed=1", "-timeout=10",
         f"-artifact_prefix={tmp_path}/", str(corpus), str(tmp_path / "seeds")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "Done 400 runs" in proc.stderr
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
