"""Writes tests/data/peer_mode_vectors.tsv, the golden vectors of the peer hashing modes, from
tests/peers/reference.py (the peers' bucketing re-implemented from their own code, checked
against their published test suites by tests/test_peer_reference.py), never from trafficsplit.

Run: .venv/bin/python tests/data/make_peer_mode_vectors.py
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from peers import reference as ref  # noqa: E402

OUT = HERE / "peer_mode_vectors.tsv"

# Units every configuration sees: ASCII, Latin-1, combining marks, CJK, astral (surrogate
# pairs in UTF-16), integers (their decimal text), and the empty string where the peer hashes it
# (GrowthBook, Unleash and flagd leave an empty id out of bucketing; see EMPTY_ALLOWED).
FIXED_UNITS: list[ref.Unit] = [
    "user-1",
    "user-42",
    "a",
    "UPPER lower 123",
    "jon@company.com",
    "userKeyA",
    "userKeyB",
    "userKeyC",
    "Jürgen",
    "josé",
    "ÅÄÖ åäö",
    "e\u0301",
    "東京タワー",
    "😀",
    "🗻 mountain",
    "\U00010348\U0001f600x",
    "ﬀ",
    0,
    1,
    42,
    -7,
    2**31,
    2**63 - 1,
    -(2**63),
    b"bytes-\xc3\xa9",
]
EMPTY_ALLOWED = {"eppo", "launchdarkly", "statsig"}

# (mode, key, salt or None, parameters, weights in percent, exposure)
CONFIGS: list[tuple[str, str, str | None, dict[str, Any], list[float], float]] = [
    ("growthbook-v1", "checkout", None, {}, [50, 50], 1.0),
    ("growthbook-v1", "checkout", None, {"encoding": "utf8"}, [10, 20, 70], 0.8),
    ("growthbook-v1", "checkout", None, {"encoding": "codepoints"}, [33.33, 33.33, 33.34], 0.5),
    (
        "growthbook-v1",
        "checkout",
        "seed-7",
        {"namespace": {"id": "ns", "start": 0.2, "end": 0.7}},
        [50, 50],
        1.0,
    ),
    ("growthbook-v2", "checkout", None, {}, [50, 50], 0.8),
    ("growthbook-v2", "checkout", None, {"encoding": "utf8"}, [0.01, 99.99], 1.0),
    ("growthbook-v2", "checkout", None, {"encoding": "codepoints"}, [25, 0, 75], 0.333),
    (
        "growthbook-v2",
        "checkout",
        None,
        {"seed": "s", "namespace": {"id": "layer-1", "start": 0.0, "end": 0.5}},
        [100],
        0.9,
    ),
    ("unleash", "new-ui", None, {}, [50, 50], 1.0),
    ("unleash", "new-ui", None, {"encoding": "utf16-low-byte"}, [33.3, 33.3, 33.4], 0.55),
    ("unleash", "new-ui", None, {"weight_total": 10000, "group_id": "g"}, [0.01, 99.99], 0.29),
    ("unleash", "new-ui", None, {"variant_group": "v", "weight_total": 3}, [100 / 3] * 3, 1.0),
    ("unleash", "new-ui", "a-salt", {}, [50, 50], 0.5),
    ("flagd", "color-flag", None, {}, [25, 25, 25, 25], 1.0),
    ("flagd", "color-flag", None, {"prefix": ""}, [50, 50], 1.0),
    ("flagd", "color-flag", None, {"weight_total": 10000}, [33.33, 33.33, 33.34], 1.0),
    ("flagd-legacy", "color-flag", None, {}, [25, 25, 25, 25], 1.0),
    ("flagd-legacy", "color-flag", None, {"prefix": "shared-seed"}, [1, 2, 97], 1.0),
    ("flagd-legacy", "color-flag", "a-salt", {}, [50, 50], 1.0),
    ("eppo", "exp", None, {}, [50, 50], 1.0),
    ("eppo", "exp", None, {"traffic_salt": "t", "arm_salt": "a"}, [50, 30, 20], 0.6),
    ("eppo", "exp", None, {"total_shards": 100}, [0, 100], 0.37),
    ("eppo", "exp", "a-salt", {"arm_salt": "a"}, [50, 50], 0.5),
    ("launchdarkly", "flag", None, {}, [33.333, 33.333, 33.334], 1.0),
    ("launchdarkly", "flag", "saltyA", {"seed": 61}, [0.001, 99.999], 1.0),
    ("launchdarkly", "hashKey", "saltyA", {}, [60, 40], 1.0),
    ("launchdarkly", "flag", None, {"arithmetic": "float32"}, [33.333, 33.333, 33.334], 1.0),
    ("launchdarkly", "hashKey", "saltyA", {"arithmetic": "float32", "seed": 61}, [60, 40], 1.0),
    ("statsig", "exp", None, {}, [50, 50], 1.0),
    ("statsig", "exp", None, {"rule_salt": "rule-1", "spec_salt": "spec"}, [33.3, 33.3, 33.4], 0.5),
    ("statsig", "exp", None, {"salt": "s"}, [0.1, 99.9], 0.0001),
    ("statsig", "exp", "a-salt", {"salt": "s"}, [50, 50], 0.5),
]


def units_for(mode: str, rng: random.Random) -> list[ref.Unit]:
    units = list(FIXED_UNITS)
    alphabets = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@:",
        "äöüßéèêñçøåæœ€£¥",
        "漢字かなカナ한국어中文",
        "😀🚀🗻🎉𝄞𐍈",
    ]
    for i in range(24):
        alphabet = "".join(alphabets[: 1 + i % 4])
        units.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))))
    if mode in EMPTY_ALLOWED:
        units.append("")
    return units


def encode_unit(unit: ref.Unit) -> tuple[str, str]:
    if isinstance(unit, int):
        return "int", str(unit)
    if isinstance(unit, bytes):
        return "bytes", unit.hex()
    return "str", unit.encode("utf-8").hex()


def launchdarkly_boundaries(count: int) -> list[tuple[str, list[float]]]:
    """Units and two-way weights for which double and float32 arithmetic choose different
    variations: the unit's bucket value lies within float32 rounding of the first cut."""
    found = []
    for i in range(200_000):
        u = f"ld-{i}"
        w = round(ref.ld_bucket("flag", "flag", u) * 100_000)
        if not 0 < w < 100_000:
            continue
        weights = [w / 1000, (100_000 - w) / 1000]
        decisions = {
            arithmetic: ref.launchdarkly_assign(
                u, weights, flag_key="flag", salt="flag", arithmetic=arithmetic
            )[0]
            for arithmetic in ("double", "float32")
        }
        if decisions["double"] != decisions["float32"]:
            found.append((u, weights))
            if len(found) == count:
                break
    return found


def main() -> None:
    rng = random.Random(20261208)
    lines = [
        "# Golden vectors of the peer hashing modes (docs/assignment-spec.md), generated from",
        "# tests/peers/reference.py by tests/data/make_peer_mode_vectors.py.",
        "# mode  key  salt(-: the key)  parameters(JSON, every default filled in)  "
        "weights(JSON, percent)  exposure  unit_type(str|bytes|int)  unit(UTF-8 hex|decimal)  "
        "arm(-1: none)  bucket  reason",
    ]
    for mode, key, salt, params, weights, exposure in CONFIGS:
        full = ref.mode_parameters(mode, key, salt, params)
        for unit in units_for(mode, rng):
            arm, bucket, reason = ref.mode_assign(mode, key, weights, exposure, unit, full, salt)
            unit_type, text = encode_unit(unit)
            lines.append(
                "\t".join(
                    [
                        mode,
                        key,
                        "-" if salt is None else salt,
                        json.dumps(full, sort_keys=True, ensure_ascii=False),
                        json.dumps(weights),
                        repr(exposure),
                        unit_type,
                        text,
                        str(-1 if arm is None else arm),
                        str(bucket),
                        reason,
                    ]
                )
            )
    # Where the Go SDK (float32) and the others (double) part: one unit per configuration.
    for unit, weights in launchdarkly_boundaries(4):
        for arithmetic in ("double", "float32"):
            full = ref.mode_parameters("launchdarkly", "flag", None, {"arithmetic": arithmetic})
            arm, bucket, reason = ref.mode_assign("launchdarkly", "flag", weights, 1.0, unit, full)
            unit_type, text = encode_unit(unit)
            lines.append(
                "\t".join(
                    [
                        "launchdarkly",
                        "flag",
                        "-",
                        json.dumps(full, sort_keys=True, ensure_ascii=False),
                        json.dumps(weights),
                        "1.0",
                        unit_type,
                        text,
                        str(-1 if arm is None else arm),
                        str(bucket),
                        reason,
                    ]
                )
            )
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines) - 3} vectors to {OUT}")


if __name__ == "__main__":
    main()
