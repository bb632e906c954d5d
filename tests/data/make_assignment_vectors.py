"""Writes tests/data/assignment_vectors.tsv from tests/reference.py (the spec in plain Python
with the reference hash packages), for the pytest and GoogleTest suites.

Run: .venv/bin/python tests/data/make_assignment_vectors.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import reference  # noqa: E402

T0 = 1_763_000_000_000_000  # 2025-11-13T02:13:20Z in microseconds
DAY = 86_400_000_000

EXPERIMENTS = {
    "three-equal": reference.Spec(
        "three-equal", 10_000, "xxh3", 1, [(None, 1.0, [100 / 3, 100 / 3, 100 / 3])]
    ),
    "ramp": reference.Spec(
        "ranker-v2",
        10_000,
        "xxh3",
        1,
        [
            (T0, 0.5, [95.0, 5.0]),
            (T0 + DAY, 0.5, [50.0, 50.0]),
            (T0 + 2 * DAY, 1.0, [95.0, 5.0]),
        ],
    ),
    "reshape": reference.Spec(
        "reshape",
        1_000,
        "murmur3",
        1,
        [
            (None, 1.0, [100 / 3, 100 / 3, 100 / 3]),
            (T0, 1.0, [50.0, 25.0, 25.0]),
            (T0 + DAY, 0.75, [20.0, 20.0, 20.0, 40.0]),
            (T0 + DAY, 0.75, [10.0, 30.0, 30.0, 30.0]),
        ],
    ),
    "versioned": reference.Spec("search-ui", 10_000, "xxh3", 3, [(None, 0.3, [33.4, 33.3, 33.3])]),
    "odd-buckets": reference.Spec("odd", 997, "murmur3", 1, [(None, 0.62, [12.5, 0.0, 87.5])]),
}

UNITS: list[str | int | bytes | None] = [
    "user-1",
    "user-42",
    "",
    "ünïcødé",
    "東京",
    "👩‍💻",
    "e\u0301",
    "\u00e9",
    0,
    1,
    -1,
    123,
    "123",
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    b"\x00\xff",
    None,
]
rng = random.Random(20261126)
UNITS += [f"u{rng.getrandbits(40):x}" for _ in range(40)] + [
    rng.randrange(-(2**63), 2**63) for _ in range(20)
]
TIMES = [None, T0 - 1, T0, T0 + DAY // 2, T0 + DAY, T0 + 3 * DAY]


def unit_columns(unit: str | int | bytes | None) -> tuple[str, str]:
    if unit is None:
        return "none", "-"
    if isinstance(unit, bytes):
        return "bytes", unit.hex()
    if isinstance(unit, str):
        return "str", unit.encode().hex()
    return "int", str(unit)


def main() -> None:
    lines = [
        "# Golden assignment vectors of contract ts1 (docs/assignment-spec.md).",
        "# E  name  salt_hex  algorithm  buckets  bucket_version  steps",
        "#    steps: ';'-separated effective_us|exposure|weight,weight,... ('-' = no time)",
        "# U  name  unit_type(str|bytes|int|none)  unit(hex|decimal|-)  at_us|-  arm  bucket"
        "  reason",
    ]
    for name, spec in EXPERIMENTS.items():
        steps = ";".join(
            f"{'-' if t is None else t}|{x!r}|{','.join(repr(float(w)) for w in ws)}"
            for t, x, ws in spec.steps
        )
        lines.append(
            "\t".join(
                [
                    "E",
                    name,
                    spec.salt.encode().hex(),
                    spec.algorithm,
                    str(spec.buckets),
                    str(spec.bucket_version),
                    steps,
                ]
            )
        )
        for unit in UNITS:
            for at in TIMES:
                arm, bucket, reason = reference.assign(spec, unit, at)
                kind, text = unit_columns(unit)
                lines.append(
                    "\t".join(
                        [
                            "U",
                            name,
                            kind,
                            text,
                            "-" if at is None else str(at),
                            str(arm),
                            str(bucket),
                            reason,
                        ]
                    )
                )
    (HERE / "assignment_vectors.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
