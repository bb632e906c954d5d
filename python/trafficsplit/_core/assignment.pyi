from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _Pybind11Type
from .hashing import Column

_Outputs = tuple[npt.NDArray[np.int16], npt.NDArray[np.int32], npt.NDArray[np.uint8]]

REASONS: tuple[str, ...]

class Assignment(metaclass=_Pybind11Type):
    """The result of assigning one unit to one experiment (immutable)."""

    @property
    def experiment(self) -> str: ...
    @property
    def arm(self) -> str | None: ...
    @property
    def arm_index(self) -> int: ...
    @property
    def payload(self) -> Any: ...
    @property
    def bucket(self) -> int: ...
    @property
    def in_experiment(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def labels(self) -> dict[str, str]: ...
    def __eq__(self, other: object) -> bool: ...

class CompiledExperiment(metaclass=_Pybind11Type):
    def __init__(
        self,
        key: str,
        salt: str,
        bucket_version: int,
        algorithm: str,
        buckets: int,
        arm_names: tuple[str, ...],
        payloads: tuple[Any, ...],
        steps: Sequence[tuple[int | None, float, Sequence[float]]],
        peer: dict[str, Any] | None = None,
    ) -> None: ...
    def assign(
        self, unit: object, at_us: int | None = None, eligible: bool = True
    ) -> Assignment: ...
    def assign_step(self, unit: object, step: int, eligible: bool = True) -> Assignment: ...
    def assign_column(
        self,
        column: Column,
        step: int,
        at_us: npt.NDArray[np.int64] | None = None,
        threads: int = 0,
        out: _Outputs | None = None,
        eligible: npt.NDArray[np.bool_] | None = None,
    ) -> _Outputs: ...
    def assign_sequence(
        self,
        sequence: Sequence[Any] | npt.NDArray[np.object_],
        step: int,
        at_us: npt.NDArray[np.int64] | None = None,
        out: _Outputs | None = None,
        eligible: npt.NDArray[np.bool_] | None = None,
    ) -> _Outputs: ...
    def step_at(self, at_us: int) -> int: ...
    def steps_at(self, at_us: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]: ...
    @property
    def current_step(self) -> int: ...
    @property
    def step_count(self) -> int: ...
    def threshold(self, step: int) -> int: ...
    def bucket_map(self, step: int) -> npt.NDArray[np.int16]: ...
    @property
    def traffic_salt(self) -> str: ...
    @property
    def arm_salt(self) -> str: ...

def apply_row_reasons(
    eligible: npt.NDArray[np.bool_] | None,
    window: npt.NDArray[np.uint8] | None,
    out: _Outputs,
) -> None: ...
def count_results(
    reason: npt.NDArray[np.uint8],
    arm: npt.NDArray[np.int16],
    arms: int,
    counts: npt.NDArray[np.int64],
) -> None: ...
def take_by_codes(
    table: npt.NDArray[Any],
    codes: npt.NDArray[np.signedinteger[Any]],
    out: npt.NDArray[Any],
    threads: int = 0,
) -> None: ...
def make_assignment(
    experiment: str, arm: str | None, arm_index: int, payload: Any, bucket: int, reason: int
) -> Assignment: ...
def assign_routes(
    routes: Sequence[Route], unit: object, at_us: int | None, eligible: Sequence[bool]
) -> list[Assignment]: ...

class Route(metaclass=_Pybind11Type):
    """Holdouts, a layer range, the status and the time window around an experiment."""

    def __init__(
        self,
        experiment: CompiledExperiment,
        holdouts: Sequence[tuple[str, int, int]],
        layer: tuple[str, int, int, int] | None,
        stopped: bool,
        start_us: int | None = None,
        end_us: int | None = None,
    ) -> None: ...
    def assign(
        self, unit: object, at_us: int | None = None, eligible: bool = True
    ) -> Assignment: ...
    def decide(
        self, unit: object, at_us: int | None, eligible: bool, forced: int, upstream: int
    ) -> Assignment: ...
    def apply_overrides(self, forced: npt.NDArray[np.int16], out: _Outputs) -> None: ...
    def assign_column(
        self,
        column: Column,
        step: int,
        at_us: npt.NDArray[np.int64] | None = None,
        threads: int = 0,
        out: _Outputs | None = None,
        eligible: npt.NDArray[np.bool_] | None = None,
        now_us: int | None = None,
    ) -> _Outputs: ...
    def assign_sequence(
        self,
        sequence: Sequence[object],
        step: int,
        at_us: npt.NDArray[np.int64] | None = None,
        out: _Outputs | None = None,
        eligible: npt.NDArray[np.bool_] | None = None,
        now_us: int | None = None,
    ) -> _Outputs: ...
    def window_reasons(self, at_us: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]: ...
