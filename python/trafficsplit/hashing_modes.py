"""Hashing modes that reproduce a peer's bucketing (docs/assignment-spec.md, "Peer hashing
modes"), beside trafficsplit's own contract ``ts1``.

A mode turns an experiment's percentages and exposure into the peer's own numbers and its
rules into what the C++ core evaluates: key functions (a peer hash of the unit's text between
a prefix and a suffix, reduced to an integer key) and, per allocation step, the key ranges
("segments") of each arm. The peers' floating-point arithmetic is done here, once, in Python
floats (IEEE-754 doubles, like JavaScript numbers and Go's float64); the core then compares
integers only.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ._frozen import FrozenDict
from ._shared.checks import check_text, is_integer, is_real
from .errors import ConfigError

TS1 = "ts1"

#: Every mode and the system whose bucketing it reproduces.
MODES: dict[str, str] = {
    TS1: "trafficsplit's own contract (docs/assignment-spec.md)",
    "growthbook-v1": "GrowthBook SDKs, hashVersion 1",
    "growthbook-v2": "GrowthBook SDKs, hashVersion 2",
    "unleash": "Unleash flexibleRollout and variants",
    "flagd": "flagd fractional, the current scheme (2026-04 on)",
    "flagd-legacy": "flagd fractional, the scheme before 2026-04",
    "eppo": "Eppo SDKs (MD5 shards)",
    "launchdarkly": "LaunchDarkly server SDKs (percentage rollouts)",
    "statsig": "Statsig server core (rule pass percentage and user buckets)",
}

_GROWTHBOOK_ENCODINGS = {
    "utf16": "the JavaScript SDK and the Python SDK 4 (UTF-16 code units)",
    "codepoints": "older Python SDKs (code points; differs from utf16 beyond U+FFFF only)",
    "utf8": "the Go and Java SDKs (UTF-8 bytes)",
}
_LAUNCHDARKLY_ARITHMETIC = {
    "double": "the Python, Ruby and Node SDKs (IEEE-754 doubles)",
    "float32": "the Go SDK (go-server-sdk-evaluation: float32)",
}
_UNLEASH_ENCODINGS = {
    "utf8": "the Rust engine (yggdrasil) and the SDKs built on it (UTF-8 bytes)",
    "utf16-low-byte": "the Node client (murmurhash3js: the low byte of each UTF-16 code unit)",
}

# The parameters of each mode and their defaults: a callable of (key, salt), or a value.
_PARAMETERS: dict[str, dict[str, Any]] = {
    "growthbook-v1": {
        "seed": lambda key, salt: salt,
        "namespace": None,
        "encoding": "utf16",
    },
    "unleash": {
        "group_id": lambda key, salt: salt,
        "variant_group": lambda key, salt: key,
        "weight_total": 1000,
        "encoding": "utf8",
    },
    "flagd": {"prefix": lambda key, salt: salt, "weight_total": 100},
    "flagd-legacy": {"prefix": lambda key, salt: salt},
    "eppo": {
        "traffic_salt": lambda key, salt: salt + "-traffic",
        "arm_salt": lambda key, salt: salt + "-split",
        "total_shards": 10_000,
    },
    "launchdarkly": {
        "flag_key": lambda key, salt: key,
        "salt": lambda key, salt: salt,
        "seed": None,
        "arithmetic": "double",
    },
    "statsig": {
        "salt": lambda key, salt: salt,
        "rule_salt": lambda key, salt: key + ":rule",
        "spec_salt": lambda key, salt: salt,
    },
}
_PARAMETERS["growthbook-v2"] = _PARAMETERS["growthbook-v1"]

_UNLEASH_VARIANT_SEED = 86028157
# A percentage read from a share: 0.29 * 100 is 28.999999999999996, which the peers' integer
# comparisons would turn into 28. Shares are rounded to this many decimals of a percent.
_PERCENT_DECIMALS = 9


@dataclass(frozen=True)
class HashingMode:
    """A peer hashing mode with every parameter resolved (``Experiment.hashing``)."""

    name: str
    parameters: FrozenDict

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.name}
        for k, v in self.parameters.items():
            out[k] = dict(v) if isinstance(v, Mapping) else v
        return out

    @property
    def buckets(self) -> int:
        """How many values ``Assignment.bucket`` takes in this mode."""
        p = self.parameters
        return {
            "growthbook-v1": 1000,
            "growthbook-v2": 10_000,
            "unleash": p.get("weight_total", 0),
            "flagd": p.get("weight_total", 0),
            "flagd-legacy": 10_001,
            "eppo": p.get("total_shards", 0),
            "launchdarkly": 100_001,
            "statsig": 1000,
        }[self.name]

    @property
    def scaled(self) -> bool:
        """Whether ``Assignment.bucket`` is a coarse view of a finer key (LaunchDarkly's 60-bit
        hash, flagd's legacy 31-bit value) rather than the key the arms are decided on."""
        return self.name in ("launchdarkly", "flagd-legacy")

    def compile(
        self, arm_names: Sequence[str], steps: Sequence[tuple[Sequence[float], float]]
    ) -> dict[str, Any]:
        """The core's description of this mode for these allocation steps ((weights in
        percent per arm, exposure) oldest first): key functions and segments."""
        return _COMPILERS[self.name](self, list(arm_names), list(steps))


def resolve(value: Any, key: str, salt: str, path: str = "hashing") -> HashingMode | None:
    """The mode ``value`` names (a name or a mapping with ``mode``), its parameters checked
    and defaulted from the experiment's ``key`` and ``salt``; None for ``ts1``."""
    if isinstance(value, HashingMode):
        return value
    if isinstance(value, str):
        name, given = value, {}
    elif isinstance(value, Mapping):
        if "mode" not in value:
            raise ConfigError(f"{path} needs 'mode': one of {list(MODES)}")
        name = value["mode"]
        given = {k: v for k, v in value.items() if k != "mode"}
    else:
        raise ConfigError(
            f"{path} must be a mode name or a mapping with 'mode', got {type(value).__name__}"
        )
    if name not in MODES:
        raise ConfigError(f"{path}.mode must be one of {list(MODES)}, got {name!r}")
    if name == TS1:
        if given:
            raise ConfigError(
                f"{path}: mode 'ts1' takes no parameters here (salt, buckets, algorithm and "
                f"bucket_version are the experiment's own), got {sorted(given)}"
            )
        return None
    allowed = _PARAMETERS[name]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{path}: mode {name!r} has no parameter {unknown[0]!r}; it takes {sorted(allowed)}"
        )
    params: dict[str, Any] = {}
    for pname, default in allowed.items():
        v = (
            given[pname]
            if pname in given
            else (default(key, salt) if callable(default) else default)
        )
        params[pname] = _check_parameter(name, pname, v, f"{path}.{pname}")
    return HashingMode(name, FrozenDict(params))


def _check_parameter(mode: str, name: str, value: Any, path: str) -> Any:
    if value is None and name in ("namespace", "seed"):
        return None
    if name == "encoding":
        allowed = _GROWTHBOOK_ENCODINGS if mode.startswith("growthbook") else _UNLEASH_ENCODINGS
        if value not in allowed:
            listing = "; ".join(f"{k!r}: {v}" for k, v in allowed.items())
            raise ConfigError(f"{path} must be one of {listing}; got {value!r}")
        return value
    if name == "arithmetic":
        if value not in _LAUNCHDARKLY_ARITHMETIC:
            listing = "; ".join(f"{k!r}: {v}" for k, v in _LAUNCHDARKLY_ARITHMETIC.items())
            raise ConfigError(f"{path} must be one of {listing}; got {value!r}")
        return value
    if name in ("weight_total", "total_shards"):
        if not is_integer(value) or not 1 <= int(value) <= 1_000_000:
            raise ConfigError(f"{path} must be a whole number from 1 to 1,000,000, got {value!r}")
        return int(value)
    if name == "seed" and mode == "launchdarkly":
        if not is_integer(value):
            raise ConfigError(f"{path} must be an integer (the rollout's seed), got {value!r}")
        return int(value)
    if name == "namespace":
        return _check_namespace(value, path)
    if not isinstance(value, str):
        raise ConfigError(f"{path} must be a string, got {type(value).__name__} {value!r}")
    check_text(value, path, ConfigError)
    if name == "prefix":
        return value
    if not value and name not in ("salt", "spec_salt", "rule_salt"):
        raise ConfigError(f"{path} must be a non-empty string")
    return value


def _check_namespace(value: Any, path: str) -> FrozenDict:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        value = {"id": value[0], "start": value[1], "end": value[2]}
    if not isinstance(value, Mapping) or set(value) != {"id", "start", "end"}:
        raise ConfigError(
            f"{path} must be {{id, start, end}} (GrowthBook's [id, start, end]), got {value!r}"
        )
    if not isinstance(value["id"], str) or not value["id"]:
        raise ConfigError(f"{path}.id must be a non-empty string, got {value['id']!r}")
    for k in ("start", "end"):
        v = value[k]
        if not is_real(v) or not 0 <= float(v) <= 1:
            raise ConfigError(f"{path}.{k} must be a number between 0 and 1, got {v!r}")
    if float(value["start"]) > float(value["end"]):
        raise ConfigError(f"{path}: start {value['start']} is after end {value['end']}")
    return FrozenDict(
        {"id": value["id"], "start": float(value["start"]), "end": float(value["end"])}
    )


# -- compiling ---------------------------------------------------------------------------------


def _key(
    hash_: str,
    *,
    prefix: str = "",
    suffix: str = "",
    encoding: str = "utf8",
    seed: int = 0,
    reduce: str = "none",
    modulus: int = 1,
) -> dict[str, Any]:
    return {
        "hash": hash_,
        "encoding": encoding,
        "prefix": prefix,
        "suffix": suffix,
        "seed": seed,
        "reduce": reduce,
        "modulus": modulus,
    }


def _spec(
    arm: dict[str, Any],
    arm_steps: list[Any],
    *,
    traffic: dict[str, Any] | None = None,
    traffic_steps: list[Any] | None = None,
    bucket_scale: float = 0.0,
) -> dict[str, Any]:
    """The core's description of a mode (a namespace gate is added by GrowthBook's)."""
    return {
        "arm": arm,
        "traffic": traffic,
        "gate": None,
        "gate_segments": ([], [1]),
        "arm_steps": arm_steps,
        "traffic_steps": traffic_steps or [],
        "bucket_scale": bucket_scale,
    }


def _runs(labels: np.ndarray) -> tuple[list[int], list[int]]:
    """Segments from one label per key 0..n-1: the keys where the label changes."""
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return change.tolist(), [int(labels[0]), *labels[change].tolist()]


def _cumulative(counts: Sequence[int]) -> tuple[list[int], list[int]]:
    """Consecutive ranges of whole counts in arm order: arm i owns [c_(i-1), c_i)."""
    cuts = np.cumsum(counts).tolist()
    return cuts, [*range(len(counts)), -1]


def _percent(exposure: float) -> float:
    return round(exposure * 100, _PERCENT_DECIMALS)


def _whole(values: Sequence[float], total: int, what: str, path: str) -> list[int]:
    """Percentages as whole parts of ``total``, exactly (or a ConfigError)."""
    out = []
    for v in values:
        x = v * total / 100
        n = round(x)
        if abs(x - n) > 1e-6:
            raise ConfigError(
                f"{path}: {v:g} % is not a whole number of {what} out of {total:,}; "
                f"this mode can only express multiples of {100 / total:g} %"
            )
        out.append(int(n))
    return out


def _no_exposure(mode: HashingMode, steps: Sequence[tuple[Sequence[float], float]]) -> None:
    for _, exposure in steps:
        if exposure != 1.0:
            raise ConfigError(
                f"hashing mode {mode.name!r} has no exposure of its own (the peer splits every "
                f"unit between the arms): give exposure 1 and the units outside the rollout an "
                f"arm of their own, got exposure {exposure:g}"
            )


def _growthbook(mode: HashingMode, arms: list[str], steps: list[Any]) -> dict[str, Any]:
    p = mode.parameters
    v2 = mode.name == "growthbook-v2"
    n = 10_000 if v2 else 1000
    if v2:
        arm = _key(
            "fnv1a32-twice", prefix=p["seed"], encoding=p["encoding"], reduce="mod", modulus=n
        )
    else:
        arm = _key("fnv1a32", suffix=p["seed"], encoding=p["encoding"], reduce="mod", modulus=n)
    h = np.arange(n, dtype=np.float64) / n  # hash() returns (fnv % n) / n
    arm_steps = []
    for weights, exposure in steps:
        coverage = min(max(exposure, 0.0), 1.0)
        labels = np.full(n, -1, dtype=np.int64)
        cumulative = 0.0
        for i, w in enumerate(weights):
            fraction = w / 100
            start = cumulative
            cumulative += fraction
            end = start + coverage * fraction
            inside = (h >= start) & (h < end) & (labels < 0)  # chooseVariation: the first range
            labels[inside] = i
        arm_steps.append(_runs(labels))
    out = _spec(arm, arm_steps)
    ns = p["namespace"]
    if ns is not None:
        out["gate"] = _key(
            "fnv1a32", suffix="__" + ns["id"], encoding=p["encoding"], reduce="mod", modulus=1000
        )
        g = np.arange(1000, dtype=np.float64) / 1000
        out["gate_segments"] = _runs(((g >= ns["start"]) & (g < ns["end"])).astype(np.int64))
    return out


def _unleash(mode: HashingMode, arms: list[str], steps: list[Any]) -> dict[str, Any]:
    p = mode.parameters
    total = p["weight_total"]
    traffic = _key(
        "murmur3", prefix=p["group_id"] + ":", encoding=p["encoding"], reduce="mod", modulus=100
    )
    arm = _key(
        "murmur3",
        prefix=p["variant_group"] + ":",
        encoding=p["encoding"],
        seed=_UNLEASH_VARIANT_SEED,
        reduce="mod",
        modulus=total,
    )
    traffic_steps, arm_steps = [], []
    for i, (weights, exposure) in enumerate(steps):
        rollout = _percent(exposure)
        # enabled <=> rollout > 0 and normalizedValue (key + 1, 1..100) <= rollout
        enabled = sum(1 for k in range(100) if rollout > 0 and k + 1 <= rollout)
        traffic_steps.append(([enabled], [1, 0]))
        # variant: the first whose cumulative weight >= key + 1, i.e. key < cumulative
        arm_steps.append(
            _cumulative(_whole(weights, total, "variant weight", _step_path(i, steps)))
        )
    return _spec(arm, arm_steps, traffic=traffic, traffic_steps=traffic_steps)


def _flagd(mode: HashingMode, arms: list[str], steps: list[Any]) -> dict[str, Any]:
    _no_exposure(mode, steps)
    p = mode.parameters
    if mode.name == "flagd":
        total = p["weight_total"]
        arm = _key("murmur3", prefix=p["prefix"], reduce="mul-shift", modulus=total)
        arm_steps = [
            _cumulative(_whole(w, total, "weight", _step_path(i, steps)))
            for i, (w, _) in enumerate(steps)
        ]
        scale = 0.0
    else:
        arm = _key("murmur3", prefix=p["prefix"], reduce="abs-int32")
        arm_steps = []
        for i, (weights, _) in enumerate(steps):
            whole = _whole(weights, 100, "percent", _step_path(i, steps))
            cuts, cumulative = [], 0.0
            for w in whole:
                cumulative += w  # Go: rangeEnd += percentage, as float64
                cuts.append(
                    _first_key(lambda k, c=cumulative: abs(k) / 2147483647 * 100 >= c, 2**31 + 1)
                )
            arm_steps.append((cuts, [*range(len(whole)), -1]))
        scale = 10_000 / 2147483647
    return _spec(arm, arm_steps, bucket_scale=scale)


def _eppo(mode: HashingMode, arms: list[str], steps: list[Any]) -> dict[str, Any]:
    p = mode.parameters
    total = p["total_shards"]
    traffic = _key("md5", prefix=p["traffic_salt"] + "-", reduce="mod", modulus=total)
    arm = _key("md5", prefix=p["arm_salt"] + "-", reduce="mod", modulus=total)
    traffic_steps, arm_steps = [], []
    for i, (weights, exposure) in enumerate(steps):
        path = _step_path(i, steps)
        (shards,) = _whole([exposure * 100], total, "traffic shards", path)
        traffic_steps.append(([shards], [1, 0]))
        arm_steps.append(_cumulative(_whole(weights, total, "shards", path)))
    return _spec(arm, arm_steps, traffic=traffic, traffic_steps=traffic_steps)


_LD_SCALE = float(0xFFFFFFFFFFFFFFF)  # 2^60 as a double, as the SDKs divide by it


def _launchdarkly(mode: HashingMode, arms: list[str], steps: list[Any]) -> dict[str, Any]:
    _no_exposure(mode, steps)
    p = mode.parameters
    prefix = str(p["seed"]) if p["seed"] is not None else f"{p['flag_key']}.{p['salt']}"
    arm = _key("sha1", prefix=prefix + ".")
    arm_steps = []
    f32 = p["arithmetic"] == "float32"
    scale32 = _float32(_LD_SCALE)
    for i, (weights, _) in enumerate(steps):
        whole = _whole(weights, 100_000, "weight units", _step_path(i, steps))
        cuts, total = [], 0.0
        for w in whole:
            if f32:
                # Go: sum += float32(weight) / 100000.0 and bucket = float32(h) / float32(scale),
                # every operation rounded to float32.
                total = _float32(total + _float32(_float32(w) / 100_000))
                cuts.append(
                    _first_key(
                        lambda k, t=total: _float32(_int_to_float32(k) / scale32) >= t, 2**60
                    )
                )
            else:
                total += w / 100_000  # sum += weight / 100000, in doubles
                cuts.append(_first_key(lambda k, t=total: float(k) / _LD_SCALE >= t, 2**60))
        # A bucket past every sum (rounding) falls back to the last variation.
        arm_steps.append((cuts, [*range(len(whole)), len(whole) - 1]))
    return _spec(arm, arm_steps, bucket_scale=100_000 / _LD_SCALE)


def _statsig(mode: HashingMode, arms: list[str], steps: list[Any]) -> dict[str, Any]:
    p = mode.parameters
    traffic = _key(
        "sha256", prefix=f"{p['spec_salt']}.{p['rule_salt']}.", reduce="mod", modulus=10_000
    )
    arm = _key("sha256", prefix=p["salt"] + ".", reduce="mod", modulus=1000)
    traffic_steps, arm_steps = [], []
    for i, (weights, exposure) in enumerate(steps):
        passing = _percent(exposure)
        # passes <=> hash % 10000 < passPercentage * 100
        threshold = sum(1 for k in range(10_000) if k < passing * 100)
        traffic_steps.append(([threshold], [1, 0]))
        arm_steps.append(_cumulative(_whole(weights, 1000, "user buckets", _step_path(i, steps))))
    return _spec(arm, arm_steps, traffic=traffic, traffic_steps=traffic_steps)


def _space(key: Mapping[str, Any]) -> int:
    """How many keys a key function yields."""
    if key["reduce"] in ("mod", "mul-shift"):
        return int(key["modulus"])
    if key["reduce"] == "abs-int32":
        return 2**31 + 1
    return 2**60 if key["hash"] == "sha1" else 2**64


def _below(key: Mapping[str, Any], k: int) -> Fraction:
    """The share of units whose key is below ``k`` (hashes being uniform), exactly."""
    k = min(max(k, 0), _space(key))
    if key["reduce"] == "abs-int32":
        # |int32(h)|: 0 and 2^31 come from one h each, every other value from two.
        return Fraction(0 if k == 0 else min(1 + 2 * (k - 1), 2**32), 2**32)
    return Fraction(k, _space(key))


def range_share(key: Mapping[str, Any], segments: Any, label: int = 1) -> tuple[int, int, int]:
    """A gate's passing keys as (lo, hi, keys) when they form one range (the traffic and
    namespace stages of every mode do)."""
    cuts, labels = segments
    bounds = [0, *cuts, _space(key)]
    runs = [(bounds[j], bounds[j + 1]) for j, lab in enumerate(labels) if lab == label]
    runs = [(lo, hi) for lo, hi in runs if hi > lo]
    if len(runs) > 1:
        raise ValueError("the passing keys of this gate are not one range")
    lo, hi = runs[0] if runs else (0, 0)
    return lo, hi, _space(key)


def arm_overlap(
    spec_a: Mapping[str, Any],
    spec_b: Mapping[str, Any],
    names_a: Sequence[str],
    names_b: Sequence[str],
) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """Two allocations (the latest step of each) of one mode with the same parameters: the
    share of units each covers, the share both cover, and the share both cover whose arm (by
    name) differs."""
    key = spec_a["arm"]
    (ca, la), (cb, lb) = spec_a["arm_steps"][-1], spec_b["arm_steps"][-1]
    points = sorted({0, *ca, *cb, _space(key)})
    cov_a = cov_b = both = differ = Fraction(0)
    for lo, hi in itertools.pairwise(points):
        if hi <= lo:
            continue
        a, b = la[bisect.bisect_right(ca, lo)], lb[bisect.bisect_right(cb, lo)]
        share = _below(key, hi) - _below(key, lo)
        cov_a += share if a >= 0 else 0
        cov_b += share if b >= 0 else 0
        if a >= 0 and b >= 0:
            both += share
            differ += share if names_a[a] != names_b[b] else 0
    return cov_a, cov_b, both, differ


def _shares(key: Mapping[str, Any], segments: Any, labels_wanted: int) -> np.ndarray:
    """The share of units under each label 0..labels_wanted-1 of a key's segments."""
    cuts, labels = segments
    bounds = [0, *cuts, _space(key)]
    out = np.zeros(labels_wanted)
    for j, label in enumerate(labels):
        if 0 <= label < labels_wanted:
            out[label] += float(_below(key, bounds[j + 1]) - _below(key, bounds[j]))
    return out


def probabilities(mode: HashingMode, spec: Mapping[str, Any], arms: int) -> np.ndarray:
    """``[step, arm]``: the probability that a unit reaching the experiment gets each arm."""
    gate = 1.0 if spec["gate"] is None else _shares(spec["gate"], spec["gate_segments"], 2)[1]
    rows = []
    for step, segments in enumerate(spec["arm_steps"]):
        traffic = 1.0
        if spec["traffic"] is not None:
            traffic = _shares(spec["traffic"], spec["traffic_steps"][step], 2)[1]
        rows.append(gate * traffic * _shares(spec["arm"], segments, arms))
    return np.array(rows)


def bucket_map(mode: HashingMode, spec: Mapping[str, Any], step: int) -> np.ndarray:
    """The arm (int16, -1 for none) of each bucket 0..buckets-1 under a step's weights."""
    if mode.scaled:
        raise ConfigError(
            f"hashing mode {mode.name!r} decides arms on a finer key than its buckets "
            "(Assignment.bucket is a coarse view of it), so it has no bucket map"
        )
    cuts, labels = spec["arm_steps"][step]
    index = np.searchsorted(
        np.asarray(cuts, np.uint64), np.arange(mode.buckets, dtype=np.uint64), side="right"
    )
    return np.asarray(labels, np.int16)[index]


def _float32(x: float) -> float:
    """x rounded to the nearest float32 (ties to even), as a Python float."""
    return float(np.float32(x))


def _int_to_float32(n: int) -> float:
    """A non-negative integer rounded once to float32 (numpy would round it to a double
    first, which can land differently on a tie)."""
    if n.bit_length() <= 24:
        return float(n)
    shift = n.bit_length() - 24
    q, r = divmod(n, 1 << shift)
    half = 1 << (shift - 1)
    if r > half or (r == half and q & 1):
        q += 1
    return float(q << shift)


def _first_key(reached: Any, end: int) -> int:
    """The smallest key in [0, end) for which the monotone test ``reached`` holds (end if
    none): a peer's float comparison turned into an integer cut point."""
    lo, hi = 0, end
    while lo < hi:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _step_path(i: int, steps: Sequence[Any]) -> str:
    return "arm weights" if i == len(steps) - 1 else f"history[{i}].weights"


_COMPILERS = {
    "growthbook-v1": _growthbook,
    "growthbook-v2": _growthbook,
    "unleash": _unleash,
    "flagd": _flagd,
    "flagd-legacy": _flagd,
    "eppo": _eppo,
    "launchdarkly": _launchdarkly,
    "statsig": _statsig,
}
