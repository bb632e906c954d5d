"""Writes tests/data/hash_vectors.tsv, the golden vectors of the hash contract.

Every hash here comes from the PyPI reference implementations (``xxhash`` for XXH3-64,
``mmh3`` for MurmurHash3 x86_32), never from trafficsplit, so the vectors check trafficsplit
against the published algorithms. The output is deterministic: rerunning this script
rewrites the same file byte for byte.

    python tests/data/make_hash_vectors.py            # writes hash_vectors.tsv next to it
    python tests/data/make_hash_vectors.py --check    # exits 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

import mmh3
import xxhash

OUT = Path(__file__).with_name("hash_vectors.tsv")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

# Ids longer than this are written as repeat:<hex>:<count> instead of plain hex.
REPEAT_ABOVE = 2048

HEADER = (
    "# Golden vectors of the trafficsplit hash contract ts1 (docs/assignment-spec.md), computed "
    "with the PyPI reference packages xxhash and mmh3 by tests/data/make_hash_vectors.py. "
    "Tab-separated columns, named by the first line that is not a comment: "
    "algorithm salt_hex unit_type unit hash64. "
    "algorithm: xxh3 = XXH3_64bits_withSeed(unit_bytes, seed=XXH3_64bits(salt_bytes)); "
    "murmur3 = MurmurHash3_x86_32(unit_bytes, seed=MurmurHash3_x86_32(salt_bytes, 0)), unsigned. "
    "salt_hex: lowercase hex of the salt's UTF-8 bytes (empty for the empty salt). "
    "unit_type: str (UTF-8 text), bytes (raw bytes) or int (an integer id). "
    "unit: for str and bytes the lowercase hex of the id's bytes (empty for the empty id), or "
    "repeat:<hex>:<count> for the bytes <hex> repeated <count> times; for int the decimal text, "
    "which is also exactly the bytes hashed. hash64: the hash as a decimal unsigned integer."
)

COLUMNS = ("algorithm", "salt_hex", "unit_type", "unit", "hash64")


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


# The salt every core id and every length id is hashed under.
MAIN_SALT = "ranker-v2/arm"

# Salts with a medium set of ids: the empty salt and a non-ASCII one.
MEDIUM_SALTS = ["", "Prüfung-排序-🧪/arm"]

# Further salts, each with a few ids: the exposure stage, a bucket version, a plain key,
# one long salt.
EXTRA_SALTS = ["ranker-v2/traffic", "ranker-v2#2/arm", "checkout-flow", "s" * 300]

# (unit_type, value): str values are text, bytes values raw bytes, int values Python ints.
CORE_IDS: list[tuple[str, object]] = [
    # ASCII
    ("str", ""),
    ("str", "a"),
    ("str", "user-42"),
    ("str", "123"),
    ("str", "-5"),
    ("str", "0123"),
    ("str", "550e8400-e29b-41d4-a716-446655440000"),
    ("str", "user@example.com"),
    ("str", " "),
    ("str", "None"),
    ("str", "NaN"),
    ("str", "tab\there\nnewline"),
    ("str", "nul\x00inside"),
    # Latin accents, NFC and NFD spellings (they must hash differently)
    ("str", nfc("café")),
    ("str", nfd("café")),
    ("str", nfc("Ångström")),
    ("str", nfd("Ångström")),
    ("str", "naïve Zoë señor"),
    # CJK, Hangul (precomposed and as conjoining jamo), other scripts
    ("str", "用户-42"),
    ("str", "ユーザー"),
    ("str", nfc("한국어")),
    ("str", nfd("한국어")),
    ("str", "пользователь"),
    ("str", "مستخدم"),
    # emoji: single, skin-tone modifier, ZWJ sequences, flag, variation selector
    ("str", "😀"),
    ("str", "👍🏽"),
    ("str", "👨\u200d👩\u200d👧\u200d👦"),
    ("str", "🧑🏿\u200d💻"),
    ("str", "🏳️\u200d🌈"),
    ("str", "🇺🇸"),
    # combining marks stacked on one base; invisible characters; code point extremes
    ("str", "e\u0301\u0302\u0323"),
    ("str", "user\u200b42"),
    ("str", "\ufeffuser"),
    ("str", "\U0010ffff\uffff\x7f\x80"),
    # integers: decimal text
    ("int", 0),
    ("int", 1),
    ("int", -1),
    ("int", 123),
    ("int", -5),
    ("int", 99),
    ("int", 100),
    ("int", INT64_MIN),
    ("int", INT64_MAX),
    ("int", UINT64_MAX),
    ("int", 2**64),
    ("int", INT64_MIN - 1),
    ("int", 10**19),
    ("int", 2**100),
    ("int", -(2**100)),
    # bytes: NUL, 0xff, invalid UTF-8
    ("bytes", b"\x00"),
    ("bytes", b"\x00\x00\x00\x00"),
    ("bytes", b"\xff"),
    ("bytes", b"a\x00b\xff"),
    ("bytes", b"abc\x00"),
    ("bytes", b"\xc3\x28\xed\xa0\x80"),
    ("bytes", bytes(range(256))),
]

MEDIUM_IDS: list[tuple[str, object]] = [
    ("str", ""),
    ("str", "user-42"),
    ("str", "123"),
    ("str", nfc("café")),
    ("str", nfd("café")),
    ("str", "用户-42"),
    ("str", "👍🏽"),
    ("str", "👨\u200d👩\u200d👧\u200d👦"),
    ("int", 0),
    ("int", -1),
    ("int", INT64_MIN),
    ("int", UINT64_MAX),
    ("int", 2**64),
    ("bytes", b"a\x00b\xff"),
]

EXTRA_IDS: list[tuple[str, object]] = [
    ("str", "user-42"),
    ("str", nfc("café")),
    ("str", "👨\u200d👩\u200d👧\u200d👦"),
    ("int", 123),
    ("bytes", b"\x00\xff"),
]


def length_ids() -> list[tuple[str, object]]:
    """ASCII ids whose lengths straddle the XXH3 code paths (0, 1-3, 4-8, 9-16, 17-128,
    129-240, > 240 bytes, 1 KiB blocks) and every MurmurHash3 tail length, plus 1 MiB ids."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
    out: list[tuple[str, object]] = []
    for n in (2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 64, 127, 128, 129, 239, 240, 241, 1023, 1024, 1025):
        # a fixed pattern that does not repeat with a short period
        text = "".join(alphabet[(i * 7 + i // 64) % 64] for i in range(n))
        out.append(("str", text))
    out.append(("str", "xyz" * 1366))  # 4098 bytes: several 1 KiB blocks
    mib = 1 << 20
    out.append(("str", "0123456789abcdef" * (mib // 16)))
    out.append(("str", "é" * (mib // 2)))  # 1 MiB of two-byte UTF-8
    out.append(("bytes", b"\x00\xff" * (mib // 2)))
    return out


def unit_bytes(unit_type: str, value: object) -> bytes:
    if unit_type == "str":
        assert isinstance(value, str)
        return value.encode("utf-8")
    if unit_type == "int":
        assert isinstance(value, int) and not isinstance(value, bool)
        return str(value).encode("ascii")
    assert unit_type == "bytes" and isinstance(value, bytes)
    return value


def encode_unit(unit_type: str, value: object) -> str:
    """The TSV's unit column."""
    if unit_type == "int":
        return str(value)
    data = unit_bytes(unit_type, value)
    if len(data) <= REPEAT_ABOVE:
        return data.hex()
    # The shortest period p (dividing the length) such that data == data[:p] * k.
    for p in range(1, len(data) // 2 + 1):
        if len(data) % p == 0 and data[:p] * (len(data) // p) == data:
            return f"repeat:{data[:p].hex()}:{len(data) // p}"
    return data.hex()


def reference_hash(algorithm: str, data: bytes, salt: str) -> int:
    salt_bytes = salt.encode("utf-8")
    if algorithm == "xxh3":
        return xxhash.xxh3_64_intdigest(data, seed=xxhash.xxh3_64_intdigest(salt_bytes))
    assert algorithm == "murmur3"
    return mmh3.hash(data, mmh3.hash(salt_bytes, 0, signed=False), signed=False)


def rows() -> list[tuple[str, str, str, str, int]]:
    plan: list[tuple[str, list[tuple[str, object]]]] = []
    plan.append((MAIN_SALT, CORE_IDS))
    plan.append((MAIN_SALT, length_ids()))
    for salt in MEDIUM_SALTS:
        plan.append((salt, MEDIUM_IDS))
    for salt in EXTRA_SALTS:
        plan.append((salt, EXTRA_IDS))
    out = []
    seen = set()
    for algorithm in ("xxh3", "murmur3"):
        for salt, ids in plan:
            for unit_type, value in ids:
                unit = encode_unit(unit_type, value)
                key = (algorithm, salt, unit_type, unit)
                if key in seen:
                    continue
                seen.add(key)
                h = reference_hash(algorithm, unit_bytes(unit_type, value), salt)
                out.append((algorithm, salt.encode("utf-8").hex(), unit_type, unit, h))
    return out


def render() -> str:
    lines = [HEADER, "\t".join(COLUMNS)]
    lines += ["\t".join(map(str, r)) for r in rows()]
    return "\n".join(lines) + "\n"


def self_check() -> None:
    """Guards the inputs: NFC/NFD pairs must really differ, and the reference packages must
    reproduce published test values before anything is written."""
    assert nfc("café").encode() != nfd("café").encode()
    assert nfc("Ångström").encode() != nfd("Ångström").encode()
    assert nfc("한국어").encode() != nfd("한국어").encode()
    # MurmurHash3 x86_32 published values (SMHasher / the reference implementation).
    assert mmh3.hash(b"", 0, signed=False) == 0
    assert mmh3.hash(b"", 1, signed=False) == 0x514E28B7
    assert mmh3.hash(b"", 0xFFFFFFFF, signed=False) == 0x81F16F39
    assert mmh3.hash(b"test", 0, signed=False) == 0xBA6BD213
    assert mmh3.hash(b"Hello, world!", 0, signed=False) == 0xC0363E43
    # XXH3-64 of the empty input with seed 0, from the xxHash sanity tests.
    assert xxhash.xxh3_64_intdigest(b"") == 0x2D06800538D394C2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the existing file instead of writing it"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    self_check()
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is out of date; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {len(text.splitlines()) - 2} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
