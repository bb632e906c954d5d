"""Fuzzes the configuration loader with atheris (libFuzzer for Python; docs/fuzzing.md).

Each input is used twice: as the raw text of a YAML file and of a JSON file for load_config,
and as the bytes from which a YAML-like structure (mappings with the configuration's own keys,
lists, text, numbers, booleans, null, times) is drawn for parse_config and, dumped to YAML,
for load_config. Either a Snapshot comes back or ConfigValidationError / ConfigError is raised;
any other exception is a finding. libFuzzer's -timeout bounds the time of one input.

    python cpp/fuzz/fuzz_config.py -runs=2000 -seed=1 cpp/fuzz/corpus/fuzz_config
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris
import yaml

import trafficsplit as ts

KEYS = [
    "experiments", "flags", "layers", "holdouts", "rollouts", "key", "arms", "weight",
    "payload", "name", "exposure", "salt", "buckets", "algorithm", "bucket_version", "targeting",
    "lists", "overrides", "status", "start", "end", "history", "at", "weights", "allocated_at",
    "layer", "layer_share", "percent", "steps", "hold", "type", "default", "rules", "when",
    "value", "rollout", "description", "control", "treatment", "running", "stopped", "bool",
]  # fmt: skip
WORDS = ["", "a", "control", "treatment", "ranking", "xxh3", "murmur3", "running", "stopped",
         "1h", "1d", 'country in ["US"]', "bool", "string", "2026-11-20T00:00:00Z"]  # fmt: skip
ACCEPTED = (ts.ConfigValidationError, ts.ConfigError)
FOLDER = Path(tempfile.mkdtemp(prefix="trafficsplit-fuzz-config-"))


def draw(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    """A YAML-like value, weighted towards mappings with the configuration's keys."""
    kind = fdp.ConsumeIntInRange(0, 11 if depth < 6 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(9)  # beyond 64 bits too
    if kind == 3:
        return fdp.ConsumeRegularFloat() if fdp.ConsumeBool() else fdp.ConsumeFloat()
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 5:
        return fdp.PickValueInList(WORDS)
    if kind == 6:
        minutes = fdp.ConsumeIntInRange(-(10**7), 10**7)
        return dt.datetime(2026, 1, 1) + dt.timedelta(minutes=minutes)
    if kind == 7:
        return fdp.ConsumeIntInRange(0, 100)
    if kind in (8, 9, 10):
        out: dict[Any, Any] = {}
        for _ in range(fdp.ConsumeIntInRange(0, 5)):
            key = fdp.PickValueInList(KEYS) if fdp.ConsumeIntInRange(0, 7) else draw(fdp, 6)
            with contextlib.suppress(TypeError):  # an unhashable key
                out[key] = draw(fdp, depth + 1)
        return out
    return [draw(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]


def accept(call: Any, *args: Any) -> None:
    try:
        snapshot = call(*args)
    except ACCEPTED:
        return
    if not isinstance(snapshot, ts.Snapshot):
        raise AssertionError(f"returned {type(snapshot).__name__}, not a Snapshot")


def test_one_input(data: bytes) -> None:
    for name in ("config.yaml", "config.json"):
        path = FOLDER / name
        path.write_bytes(data)
        accept(ts.load_config, path)
    fdp = atheris.FuzzedDataProvider(data)
    document = draw(fdp)
    if isinstance(document, dict) and fdp.ConsumeBool():
        document.setdefault("experiments", [{"key": "e", "arms": {"a": 50, "b": 50}}])
    accept(ts.parse_config, document)
    try:
        text = yaml.safe_dump(document)
    except (yaml.YAMLError, RecursionError):
        return
    path = FOLDER / "drawn.yaml"
    path.write_text(text, encoding="utf-8")
    accept(ts.load_config, path)


def main() -> None:
    atheris.instrument_all()  # coverage of every loaded Python function guides the mutations
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
