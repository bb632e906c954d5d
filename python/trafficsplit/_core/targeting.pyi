from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from . import _Pybind11Type

_Items = TypeVar("_Items", bound=Iterable[Any])

MAX_EXPRESSION_BYTES: int
MAX_DEPTH: int
MAX_LIST_ITEMS: int

class AttributeColumn(metaclass=_Pybind11Type):
    """An attribute column prepared for the evaluator; keeps its buffers alive."""

    @staticmethod
    def missing(rows: int) -> AttributeColumn: ...
    @staticmethod
    def other(rows: int) -> AttributeColumn: ...
    @staticmethod
    def from_objects(values: Sequence[Any] | npt.NDArray[np.object_]) -> AttributeColumn: ...
    @staticmethod
    def from_object_rows(values: Sequence[Any] | npt.NDArray[np.object_]) -> AttributeColumn: ...
    @staticmethod
    def from_numpy(
        values: npt.NDArray[Any], nulls: npt.NDArray[np.bool_] | None = None
    ) -> AttributeColumn: ...
    @staticmethod
    def from_arrow(schema: object, array: object) -> AttributeColumn: ...
    @staticmethod
    def from_dictionary(
        codes: npt.NDArray[np.integer[Any]], dictionary: AttributeColumn
    ) -> AttributeColumn: ...
    def __len__(self) -> int: ...

class CompiledTargeting(metaclass=_Pybind11Type):
    # The binding reads ``lists`` as a dict (not any Mapping) of iterables.
    def __init__(self, expression: str, lists: dict[str, _Items] | None = None) -> None: ...
    @property
    def attributes(self) -> list[str]: ...
    def canonical(self) -> str: ...
    def evaluate(self, attributes: Mapping[str, Any]) -> int: ...
    def matches(self, attributes: Mapping[str, Any]) -> bool: ...
    def mask(
        self, columns: Sequence[AttributeColumn], rows: int, threads: int = 0
    ) -> npt.NDArray[np.bool_]: ...
