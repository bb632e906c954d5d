"""What every bandit policy shares, and its description: arms, floor, seed and Monte Carlo
draws; ``to_dict``/``from_dict`` and their JSON text; :func:`policy_from_dict`, which rebuilds a
policy of any kind from its description."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from ..errors import ConfigError
from .checks import check_arms, check_count, check_seed, check_share

__all__ = ["BanditPolicy", "policy_from_dict"]

# kind -> the class whose descriptions have that kind, filled as the classes are defined
_KINDS: dict[str, type[BanditPolicy]] = {}


class BanditPolicy:
    """The base of :class:`~trafficsplit.bandit.Policy` (per-arm statistics) and
    :class:`~trafficsplit.bandit.LinearThompson` (per-arm regressions on request features).

    They share arms, ``floor``, ``seed``, ``draws`` and the JSON description; they differ in
    what an update and an allocation need (a contextual policy needs the features), so neither
    stands in for the other.
    """

    kind: ClassVar[str] = ""

    def __init__(self, arms: Sequence[str], *, floor: float, seed: int, draws: int) -> None:
        self._arms = check_arms(arms)
        self._index = {a: i for i, a in enumerate(self._arms)}
        self._floor = check_share(floor, "floor")
        self._seed = check_seed(seed, "seed")
        self._draws = check_count(draws, "draws")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and cls.kind:
            _KINDS[cls.kind] = cls

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def draws(self) -> int:
        return self._draws

    # -- the description -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description: kind, arms, parameters and statistics."""
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Rebuilds a policy from :meth:`to_dict` output, of the kind the description names
        (this class's own when it names none)."""
        if not isinstance(d, Mapping):
            raise ConfigError("a policy description is a mapping with a 'kind'")
        kind = d.get("kind", cls.kind)
        if not kind:
            raise ConfigError("a policy description is a mapping with a 'kind'")
        target = _KINDS.get(kind)
        if target is None:
            raise ConfigError(f"unknown policy kind {kind!r}; expected one of {sorted(_KINDS)}")
        if not issubclass(target, cls):
            raise ConfigError(
                f"a {kind!r} description is a {target.__name__}, not a {cls.__name__}"
            )
        return target._rebuild(d)

    @classmethod
    def _rebuild(cls, d: Mapping[str, Any]) -> Self:
        """A policy of exactly this class from its description (the subclasses' part)."""
        raise NotImplementedError

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        return cls.from_dict(json.loads(text))

    def copy(self) -> Self:
        """An independent copy with the same parameters and statistics."""
        return type(self)._rebuild(self.to_dict())


def policy_from_dict(d: Mapping[str, Any] | str | bytes) -> BanditPolicy:
    """Rebuilds a policy of any kind from :meth:`BanditPolicy.to_dict` output (or its JSON
    text)."""
    if isinstance(d, str | bytes):
        d = json.loads(d)
    if not isinstance(d, Mapping) or "kind" not in d:
        raise ConfigError("a policy description is a mapping with a 'kind'")
    return BanditPolicy.from_dict(d)
