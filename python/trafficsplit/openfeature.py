"""OpenFeature in-process: trafficsplit flags and experiments behind the OpenFeature client API
(docs/openfeature.md).

:func:`resolve` maps one trafficsplit decision to an OpenFeature resolution (value, variant,
reason, error code, metadata) without the OpenFeature SDK, so an OFREP service can serve the
same answers; :class:`TrafficsplitProvider` (needs ``pip install 'trafficsplit[openfeature]'``)
is the provider that ``openfeature.api.set_provider`` takes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._optional import require
from .config import ExperimentConfig, FlagConfig, Snapshot
from .errors import ArgumentError, ConfigError, UnitTypeError, UnitValueError
from .splitter import Splitter
from .telemetry.metrics import MetricsRecorder

if TYPE_CHECKING:
    from openfeature.provider import AbstractProvider

    TrafficsplitProvider: type[AbstractProvider]

__all__ = ["KINDS", "Resolution", "TrafficsplitProvider", "resolve"]

Kind = Literal["boolean", "string", "integer", "float", "object"]

KINDS: tuple[str, ...] = ("boolean", "string", "integer", "float", "object")
"""The value types OpenFeature asks for (``FlagType`` in lower case)."""

# The OpenFeature reason of each experiment reason (docs/openfeature.md#experiments).
_EXPERIMENT_REASONS = {
    "assigned": "SPLIT",
    "sticky": "SPLIT",
    "propagated": "SPLIT",
    "override": "TARGETING_MATCH",
    "stopped": "DISABLED",
    "not_started": "DISABLED",
    "holdout": "DEFAULT",
    "layer_other": "DEFAULT",
    "targeting_miss": "DEFAULT",
    "not_exposed": "DEFAULT",
}

# The flag types each kind can be read from.
_FLAG_KINDS = {
    "bool": ("boolean",),
    "string": ("string",),
    "number": ("integer", "float"),
    "json": ("object",),
}


@dataclass(frozen=True)
class Resolution:
    """One flag or experiment resolved the OpenFeature way.

    ``reason``: ``SPLIT``, ``TARGETING_MATCH``, ``STATIC``, ``DEFAULT``, ``DISABLED`` or
    ``ERROR``; ``error_code`` (with ``error_message``) only with ``ERROR``: ``FLAG_NOT_FOUND``,
    ``TYPE_MISMATCH``, ``TARGETING_KEY_MISSING``, ``INVALID_CONTEXT``, ``PARSE_ERROR`` or
    ``GENERAL``. ``variant`` names the value whenever there is no error. ``metadata``: the
    configuration ``version``, the trafficsplit ``reason`` and, for an experiment, its
    ``experiment`` key and ``bucket_version``.
    """

    key: str
    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    error_message: str | None = None
    metadata: Mapping[str, bool | int | float | str] = field(default_factory=dict)


def resolve(
    splitter: Splitter,
    key: str,
    kind: str,
    default: Any,
    targeting_key: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    *,
    request_id: str | None = None,
    log_exposure: bool = True,
) -> Resolution:
    """Resolves flag or experiment ``key`` as an OpenFeature value of ``kind`` (``boolean``,
    ``string``, ``integer``, ``float`` or ``object``) for a unit (``targeting_key``; when it is
    None, the attribute the flag or experiment names as its unit) and its attributes. The
    targeting key is also the unit attribute that targeting rules read, unless the
    attributes have it. A flag key is looked up first, then an experiment key.

    Every error gives ``default`` back with reason ``ERROR``; a split decision (a flag's
    percentage rollout, an experiment's arm) leaves an exposure record when the Splitter has
    ``exposures`` and ``log_exposure`` is true.

    >>> import trafficsplit as ts
    >>> sp = ts.Splitter({"flags": [{"key": "dark-mode", "type": "bool", "default": False}]})
    >>> r = resolve(sp, "dark-mode", "boolean", True, "user-1")
    >>> r.value, r.variant, r.reason
    (False, 'default', 'STATIC')
    """
    if kind not in KINDS:
        raise ArgumentError(f"resolve: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    snapshot = splitter.snapshot
    flag = snapshot.flags.get(key)
    experiment = snapshot.experiments.get(key) if flag is None else None
    version = snapshot.version
    if flag is None and experiment is None:
        return _error(
            key,
            default,
            "FLAG_NOT_FOUND",
            f"no flag or experiment '{key}' in configuration {version}",
            {"version": version},
        )
    unit_name = flag.unit if flag is not None else experiment.unit  # type: ignore[union-attr]
    attrs: dict[str, Any] = dict(attributes) if attributes else {}
    if targeting_key is not None:
        attrs.setdefault(unit_name, targeting_key)
    unit = targeting_key if targeting_key is not None else attrs.get(unit_name)
    try:
        if flag is not None:
            return _resolve_flag(
                splitter, snapshot, flag, kind, default, unit, attrs, request_id, log_exposure
            )
        assert experiment is not None
        return _resolve_experiment(
            splitter, snapshot, experiment, kind, default, unit, attrs, request_id, log_exposure
        )
    except (UnitTypeError, UnitValueError, TypeError) as exc:
        return _error(key, default, "INVALID_CONTEXT", str(exc), {"version": version})
    except ConfigError as exc:
        return _error(key, default, "PARSE_ERROR", str(exc), {"version": version})
    except Exception as exc:  # an evaluation must answer, whatever went wrong
        return _error(key, default, "GENERAL", f"{type(exc).__name__}: {exc}", {"version": version})


def _error(
    key: str,
    default: Any,
    code: str,
    message: str,
    metadata: Mapping[str, bool | int | float | str],
) -> Resolution:
    return Resolution(key, default, None, "ERROR", code, message, metadata)


def _resolve_flag(
    splitter: Splitter,
    snapshot: Snapshot,
    flag: FlagConfig,
    kind: str,
    default: Any,
    unit: Any,
    attrs: dict[str, Any],
    request_id: str | None,
    log_exposure: bool,
) -> Resolution:
    meta: dict[str, bool | int | float | str] = {"version": snapshot.version}
    if kind not in _FLAG_KINDS.get(flag.type, ()):
        return _error(
            flag.key,
            default,
            "TYPE_MISMATCH",
            f"flag '{flag.key}' is of type {flag.type}, asked for as {kind}",
            meta,
        )
    if kind == "integer" and not all(_whole(v) for v in _flag_values(flag)):
        return _error(
            flag.key,
            default,
            "TYPE_MISMATCH",
            f"flag '{flag.key}' has values that are not whole numbers; ask for it as float",
            meta,
        )
    if kind == "object" and not all(isinstance(v, dict | tuple) for v in _flag_values(flag)):
        return _error(
            flag.key,
            default,
            "TYPE_MISMATCH",
            f"flag '{flag.key}' has values that are not objects or lists",
            meta,
        )
    ev = splitter.flag_details(
        flag.key, unit, attrs, request_id=request_id, log_exposure=log_exposure
    )
    meta["reason"] = ev.reason
    if ev.reason == "default" and unit is None and _needs_unit(flag, attrs):
        return _error(
            flag.key,
            default,
            "TARGETING_KEY_MISSING",
            f"flag '{flag.key}' has a percentage rollout for these attributes and needs a "
            f"targeting key (or the attribute '{flag.unit}')",
            meta,
        )
    if ev.reason == "default":
        reason = "DEFAULT" if flag.rules or flag.prerequisites else "STATIC"
    else:
        reason = {
            "disabled": "DISABLED",
            "prerequisite_failed": "DEFAULT",
            "targeting_match": "TARGETING_MATCH",
            "split": "SPLIT",
        }.get(ev.reason, "DEFAULT")
    return Resolution(flag.key, _value(ev.value, kind), ev.variant, reason, metadata=meta)


def _resolve_experiment(
    splitter: Splitter,
    snapshot: Snapshot,
    e: ExperimentConfig,
    kind: str,
    default: Any,
    unit: Any,
    attrs: dict[str, Any],
    request_id: str | None,
    log_exposure: bool,
) -> Resolution:
    meta: dict[str, bool | int | float | str] = {
        "version": snapshot.version,
        "experiment": e.key,
        "bucket_version": e.experiment.bucket_version,
    }
    if kind not in ("string", "object"):
        return _error(
            e.key,
            default,
            "TYPE_MISMATCH",
            f"experiment '{e.key}' resolves as a string (the arm) or an object (its "
            f"payload), asked for as {kind}",
            meta,
        )
    if kind == "object":
        bad = [a.name for a in e.experiment.arms if not isinstance(a.payload, dict | tuple | None)]
        if bad:
            return _error(
                e.key,
                default,
                "TYPE_MISMATCH",
                f"experiment '{e.key}': the payload of arm {', '.join(bad)} is not an object "
                "or a list",
                meta,
            )
    if unit is None:
        return _error(
            e.key,
            default,
            "TARGETING_KEY_MISSING",
            f"experiment '{e.key}' needs a targeting key (or the attribute '{e.unit}')",
            meta,
        )
    a = splitter.assign(e.key, unit, attrs, request_id=request_id, log_exposure=log_exposure)
    meta["reason"] = a.reason
    if a.arm is None:
        reason = _EXPERIMENT_REASONS.get(a.reason, "DEFAULT")
        return Resolution(e.key, default, "default", reason, metadata=meta)
    reason = _EXPERIMENT_REASONS.get(a.reason, "SPLIT")
    if kind == "string":
        return Resolution(e.key, a.arm, a.arm, reason, metadata=meta)
    value = default if a.payload is None else _value(a.payload, "object")
    return Resolution(e.key, value, a.arm, reason, metadata=meta)


def _flag_values(flag: FlagConfig) -> list[Any]:
    """Every value a flag can resolve to."""
    values = [flag.default]
    for rule in flag.rules:
        values.extend(rule.rollout_values if rule.rollout is not None else (rule.value,))
    return values


def _whole(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _needs_unit(flag: FlagConfig, attrs: Mapping[str, Any]) -> bool:
    """Whether a rollout rule applied to these attributes and was passed over for want of a
    unit (the flag's value fell to its default only because there was none)."""
    return any(
        rule.rollout is not None and (rule.when is None or rule.when.matches(attrs))
        for rule in flag.rules
    )


def _value(value: Any, kind: str) -> Any:
    """A configuration value as OpenFeature hands it out: plain dicts and lists (a copy the
    caller may change), int or float as asked."""
    if kind == "integer":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "object":
        return _thaw(value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


_PROVIDER: type | None = None
_PROVIDER_LOCK = threading.Lock()


def __getattr__(name: str) -> Any:
    # The provider class derives from the SDK's AbstractProvider, so it is made on first use:
    # resolve() and this module import without the SDK.
    if name == "TrafficsplitProvider":
        return _provider_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _provider_class() -> type:
    global _PROVIDER
    with _PROVIDER_LOCK:
        if _PROVIDER is None:
            _PROVIDER = _define_provider()
        return _PROVIDER


def _define_provider() -> type:
    require("openfeature", what="trafficsplit.openfeature.TrafficsplitProvider")
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEventDetails
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagResolutionDetails
    from openfeature.provider import AbstractProvider, Metadata
    from openfeature.track import TrackingEventDetails

    from .telemetry.metrics import MetricsRecorder

    class TrafficsplitProvider(AbstractProvider):
        """An OpenFeature provider over a :class:`~trafficsplit.Splitter`: its flags as
        boolean, string, integer, float and object flags, its experiments as string flags
        (the arm) and object flags (the arm's payload).

        ``metrics``: the :class:`~trafficsplit.MetricsRecorder` that :meth:`track` feeds
        (default: a new one, :attr:`metrics`). ``experiment``: the experiment whose arm a
        tracked value is recorded under when the event names none (``experiment`` in the
        tracking details' attributes). A reload of the Splitter's files emits
        ``PROVIDER_CONFIGURATION_CHANGED`` (the changed keys in ``flags_changed``); a reload
        that fails emits ``PROVIDER_ERROR`` while the last good configuration keeps serving,
        and the next good one ``PROVIDER_READY`` again."""

        def __init__(
            self,
            splitter: Splitter,
            *,
            metrics: MetricsRecorder | None = None,
            experiment: str | None = None,
            name: str = "trafficsplit",
        ) -> None:
            super().__init__()
            if not isinstance(splitter, Splitter):
                raise ConfigError(
                    "TrafficsplitProvider needs a trafficsplit.Splitter, "
                    f"got {type(splitter).__name__}"
                )
            if metrics is not None and not isinstance(metrics, MetricsRecorder):
                raise ConfigError(
                    f"metrics must be a trafficsplit.MetricsRecorder, got {type(metrics).__name__}"
                )
            self.splitter = splitter
            self.metrics = metrics if metrics is not None else MetricsRecorder()
            self.experiment = experiment
            self._name = name
            self._unsubscribe: Callable[[], None] | None = None
            self._snapshot = splitter.snapshot
            self._failed = False
            # Two reloads may tell of themselves at once (the watcher and a reload() call).
            self._events_lock = threading.Lock()

        def __repr__(self) -> str:
            return f"TrafficsplitProvider({self.splitter.version!r})"

        # -- life cycle and events -------------------------------------------------------

        def get_metadata(self) -> Metadata:
            return Metadata(name=self._name)

        def initialize(self, evaluation_context: EvaluationContext) -> None:
            if self._unsubscribe is None:
                self._snapshot = self.splitter.snapshot
                self._unsubscribe = self.splitter.on_reload(self._reloaded)

        def shutdown(self) -> None:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

        def _reloaded(self, *event: Any) -> None:
            with self._events_lock:
                self._emit_reload(event)

        def _emit_reload(self, event: tuple[Any, ...]) -> None:
            if len(event) == 1:
                error = event[0]
                self._failed = True
                code = (
                    ErrorCode.PARSE_ERROR if isinstance(error, ConfigError) else ErrorCode.GENERAL
                )
                self.emit_provider_error(
                    ProviderEventDetails(
                        message=f"configuration not reloaded, still serving "
                        f"{self.splitter.version}: {error}",
                        error_code=code,
                        metadata={"version": self.splitter.version},
                    )
                )
                return
            old, new = self._snapshot, self.splitter.snapshot
            self._snapshot = new
            if self._failed:
                self._failed = False
                self.emit_provider_ready(ProviderEventDetails(metadata={"version": new.version}))
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=changed_keys(old, new),
                    message=f"configuration {new.version} in force",
                    metadata={"version": new.version, "previous_version": old.version},
                )
            )

        # -- evaluation ------------------------------------------------------------------

        def _details(
            self,
            key: str,
            kind: str,
            default: Any,
            context: EvaluationContext | None,
        ) -> FlagResolutionDetails[Any]:
            targeting_key = context.targeting_key if context is not None else None
            attributes = context.attributes if context is not None else None
            r = resolve(self.splitter, key, kind, default, targeting_key, attributes)
            return FlagResolutionDetails(
                value=r.value,
                error_code=ErrorCode(r.error_code) if r.error_code else None,
                error_message=r.error_message,
                reason=r.reason,
                variant=r.variant,
                flag_metadata=dict(r.metadata),
            )

        def resolve_boolean_details(
            self,
            flag_key: str,
            default_value: bool,
            evaluation_context: EvaluationContext | None = None,
        ) -> FlagResolutionDetails[bool]:
            return self._details(flag_key, "boolean", default_value, evaluation_context)

        def resolve_string_details(
            self,
            flag_key: str,
            default_value: str,
            evaluation_context: EvaluationContext | None = None,
        ) -> FlagResolutionDetails[str]:
            return self._details(flag_key, "string", default_value, evaluation_context)

        def resolve_integer_details(
            self,
            flag_key: str,
            default_value: int,
            evaluation_context: EvaluationContext | None = None,
        ) -> FlagResolutionDetails[int]:
            return self._details(flag_key, "integer", default_value, evaluation_context)

        def resolve_float_details(
            self,
            flag_key: str,
            default_value: float,
            evaluation_context: EvaluationContext | None = None,
        ) -> FlagResolutionDetails[float]:
            return self._details(flag_key, "float", default_value, evaluation_context)

        def resolve_object_details(
            self,
            flag_key: str,
            default_value: Any,
            evaluation_context: EvaluationContext | None = None,
        ) -> FlagResolutionDetails[Any]:
            return self._details(flag_key, "object", default_value, evaluation_context)

        # -- tracking --------------------------------------------------------------------

        def track(
            self,
            tracking_event_name: str,
            evaluation_context: EvaluationContext | None = None,
            tracking_event_details: TrackingEventDetails | None = None,
        ) -> None:
            """Records the event's value (1.0 when it has none, so ``n`` counts events) as
            metric ``tracking_event_name`` under the arm the unit (the targeting key, or the
            experiment's unit attribute) has in the experiment named by the details'
            attribute ``experiment``, or else the provider's ``experiment``. A unit without
            an arm, or an event that names no experiment of the configuration, records
            nothing. The arm is looked up without leaving an exposure record."""
            details = tracking_event_details or TrackingEventDetails()
            experiment = details.attributes.get("experiment", self.experiment)
            if not isinstance(experiment, str):
                return
            if experiment not in self.splitter.snapshot.experiments:
                return
            context = evaluation_context or EvaluationContext()
            a = self.splitter.assign(
                experiment, context.targeting_key, context.attributes, log_exposure=False
            )
            if a.arm is not None:
                value = 1.0 if details.value is None else float(details.value)
                self.metrics.record(tracking_event_name, a.arm, value)

    return TrafficsplitProvider


def changed_keys(old: Snapshot, new: Snapshot) -> list[str]:
    """The keys of the flags and experiments whose configuration differs between two
    snapshots (added and removed ones included); every experiment when the layers or
    holdouts changed."""
    changed: set[str] = set()
    for section in ("flags", "experiments", "rollouts"):
        before = _entries(old.raw, section)
        after = _entries(new.raw, section)
        changed.update(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for section in ("layers", "holdouts"):
        if _entries(old.raw, section) != _entries(new.raw, section):
            changed.update(old.experiments)
            changed.update(new.experiments)
    return sorted(changed)


def _entries(raw: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The entries of one section across the snapshot's documents, by key."""
    out: dict[str, Any] = {}
    for document in raw.get("documents", ()):
        data = document.get("data") if isinstance(document, Mapping) else None
        entries = data.get(section) if isinstance(data, Mapping) else None
        for e in entries or ():
            if isinstance(e, Mapping) and "key" in e:
                out[e["key"]] = e
    return out
