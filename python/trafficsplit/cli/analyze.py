"""``trafficsplit analyze``: an experiment's analysis from a Parquet/CSV file or dataset (unit
rows or per-arm sufficient statistics), as a table, JSON or an HTML report; and
``trafficsplit sample-size``: the units a test needs, from the power functions of
:mod:`trafficsplit.stats`.

Exit codes: 0 ok; 1 a sample-ratio mismatch (``analyze`` prints its figures and writes its
report all the same); 2 the command could not run, with one line on standard error naming the
file and column, and nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .._optional import require

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4")


_EQUAL = "equal shares"


class _Failure(Exception):
    """The command cannot run; the message says where (file, column, option) and what."""


# -- arguments --------------------------------------------------------------------------------


def _number(text: str) -> float:
    """A finite number; ``5%`` is 0.05."""
    body = text.strip()
    scale = 1.0
    if body.endswith("%"):
        body, scale = body[:-1].strip(), 0.01
    try:
        value = float(body) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _open_unit(text: str) -> float:
    """A number strictly between 0 and 1 (``0.05`` or ``5%``)."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (e.g. 0.05 or 5%), got {text}")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _exposure(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (e.g. 0.5 or 50%), got {text}")
    return value


def _arm_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of arms, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 arms (control and one), got {value}")
    return value


def _weights(text: str) -> dict[str, float]:
    """``control=50,a=25,b=25`` (shares on any scale; ``%`` allowed)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise argparse.ArgumentTypeError(
                f"expected ARM=SHARE,... like control=50,treatment=50; got {text!r}"
            )
        if name in out:
            raise argparse.ArgumentTypeError(f"arm {name!r} is named twice in {text!r}")
        share = _number(value)
        if share <= 0:
            raise argparse.ArgumentTypeError(f"arm {name!r}: share must be > 0, got {value}")
        out[name] = share
    if len(out) < 2:
        raise argparse.ArgumentTypeError(f"needs at least two arms, got {text!r}")
    return out


def _assignment(text: str) -> tuple[str, str]:
    """``METRIC=COLUMN``."""
    name, sep, column = (s.strip() for s in text.partition("="))
    if not sep or not name or not column:
        raise argparse.ArgumentTypeError(
            f"expected METRIC=COLUMN like revenue=revenue_pre; got {text!r}"
        )
    return name, column


def _ratio(text: str) -> tuple[str, tuple[str, str]]:
    """``NAME=NUMERATOR/DENOMINATOR``."""
    name, sep, rest = (s.strip() for s in text.partition("="))
    parts = [p.strip() for p in rest.split("/")]
    if not sep or not name or len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected NAME=NUMERATOR/DENOMINATOR like ctr=clicks/views; got {text!r}"
        )
    return name, (parts[0], parts[1])


@dataclass(frozen=True)
class _GuardrailSpec:
    metric: str
    margin: float = 0.05
    relative: bool = True
    higher_is_better: bool = False

    def describe(self) -> str:
        size = f"{self.margin * 100:g} % of control" if self.relative else f"{self.margin:g}"
        better = "higher" if self.higher_is_better else "lower"
        return f"{better} is better, margin {size}"


_DIRECTIONS = {"lower": False, "higher": True}


def _guardrail(text: str) -> _GuardrailSpec:
    """``METRIC[:MARGIN[:DIRECTION]]``: ``latency_ms``, ``latency_ms:5%``,
    ``error_rate:0.002abs``, ``ctr_floor:2%:higher``."""
    fields = [f.strip() for f in text.split(":")]
    usage = (
        "expected METRIC[:MARGIN[:lower|higher]] like latency_ms:5% or error_rate:0.002abs:lower"
    )
    if not fields[0] or len(fields) > 3:
        raise argparse.ArgumentTypeError(f"{usage}; got {text!r}")
    spec = _GuardrailSpec(fields[0])
    if len(fields) > 1 and fields[1]:
        margin = fields[1]
        relative = not margin.lower().endswith("abs")
        if not relative:
            margin = margin[:-3]
        try:
            value = _number(margin)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"{usage}; margin {fields[1]!r} is no number"
            ) from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"margin must be >= 0, got {fields[1]!r}")
        spec = _GuardrailSpec(spec.metric, value, relative)
    if len(fields) > 2:
        direction = fields[2].lower()
        if direction not in _DIRECTIONS:
            raise argparse.ArgumentTypeError(
                f"{usage}; direction must be 'lower' or 'higher' (which is better), "
                f"got {fields[2]!r}"
            )
        spec = _GuardrailSpec(spec.metric, spec.margin, spec.relative, _DIRECTIONS[direction])
    return spec


_ANALYZE_EPILOG = """\
examples:
  trafficsplit analyze --input outcomes.parquet --arm arm --metric converted \\
      --metric revenue --covariate revenue=revenue_pre --ratio ctr=clicks/views \\
      --guardrail latency_ms:5% --weights control=50,treatment=50 --report analysis.html
  trafficsplit analyze --input exports/ --arm arm --metric revenue \\
      --config experiments.yaml --experiment ranker-v2 --json > analysis.json

input: one row per unit (the arm column and numeric or boolean metric columns), or one row
per arm (or per arm and partition) of sufficient statistics: n, sum__COL, sumsq__COL and
sumprod__A__B, as trafficsplit.sufficient_statistics or a SQL GROUP BY makes them. A folder is
read as one dataset (hive partitions such as arm=control/ become columns). Only the columns
named are read.

exit codes: 0 ok; 1 sample-ratio mismatch (the results are printed and the report written all
the same); 2 the command could not run (a missing file or column, a wrong column type, a bad
argument or configuration): one line on standard error, nothing written."""

_SAMPLE_SIZE_EPILOG = """\
examples:
  trafficsplit sample-size --baseline-rate 10% --mde 5%
  trafficsplit sample-size --baseline-rate 0.10 --mde 0.005 --absolute --power 0.9
  trafficsplit sample-size --baseline-mean 12.5 --sd 30 --mde 2% \\
      --weights control=50,a=25,b=25 --daily-units 40000 --exposure 50%

Normal approximations (the pooled two-proportion z test, Fleiss; the two-sample z test for
means), as statsmodels computes them; with more than two arms every treatment is compared with
control at alpha / (arms - 1) (Bonferroni). docs/statistics.md gives the formulas.

exit codes: 0 ok; 2 a bad argument (one line on standard error)."""


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Usage errors as one line on standard error (exit 2), like the command's other errors."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"{parser.prog}: error: {message} ('{parser.prog} --help' tells more)\n")

    parser.error = error  # type: ignore[method-assign]


def register(sub: argparse._SubParsersAction) -> None:
    analyze = sub.add_parser(
        "analyze",
        help="analyse an experiment from a Parquet/CSV file or dataset",
        description="Compares every arm with the control arm on each metric (Welch t-test;\n"
        "CUPED with --covariate; delta method for --ratio; non-inferiority for --guardrail),\n"
        "adjusts the p-values for multiple comparisons and checks the sample ratio. Prints a\n"
        "table, or JSON with --json; --report also writes an HTML page.",
        epilog=_ANALYZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = analyze.add_argument
    a(
        "--input",
        required=True,
        metavar="PATH",
        help="a Parquet or CSV file, or a folder of them (a dataset); e.g. outcomes.parquet, "
        "units.csv or exports/",
    )
    a(
        "--format",
        choices=("auto", "parquet", "csv"),
        default="auto",
        help="how to read --input (default auto: .csv files as CSV, anything else as "
        "Parquet); e.g. --format csv for a file named units.txt",
    )
    a("--arm", required=True, metavar="COLUMN", help="the column naming each unit's arm; e.g. arm")
    a(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="a column to compare by its mean (numbers, or booleans as rates); repeat for "
        "more; e.g. --metric converted --metric revenue",
    )
    a(
        "--control",
        default="control",
        metavar="NAME",
        help="the arm every other arm is compared with (default control); e.g. --control v1",
    )
    a(
        "--covariate",
        action="append",
        default=[],
        type=_assignment,
        metavar="METRIC=COLUMN",
        help="CUPED: adjust METRIC (a --metric) by its pre-experiment COLUMN; e.g. "
        "--covariate revenue=revenue_pre",
    )
    a(
        "--ratio",
        action="append",
        default=[],
        type=_ratio,
        metavar="NAME=NUM/DEN",
        help="a ratio metric, sum of NUM over sum of DEN per arm (delta method); e.g. "
        "--ratio ctr=clicks/views",
    )
    a(
        "--guardrail",
        action="append",
        default=[],
        type=_guardrail,
        metavar="METRIC[:MARGIN[:DIR]]",
        help="a metric that must not get worse by more than MARGIN (one-sided non-inferiority "
        "test): MARGIN is a share of the control mean (5%% or 0.05, the default) or an amount "
        "ending in abs; DIR says which is better, lower (the default) or higher; e.g. "
        "latency_ms:5%%, error_rate:0.002abs, retention:1%%:higher",
    )
    weights = analyze.add_mutually_exclusive_group()
    weights.add_argument(
        "--weights",
        type=_weights,
        metavar="ARM=SHARE,...",
        help="the configured split, for the sample-ratio check (default: equal shares); e.g. "
        "control=50,a=25,b=25",
    )
    weights.add_argument(
        "--config",
        metavar="PATH",
        help="take the split from this configuration file or folder (with --experiment); e.g. "
        "experiments.yaml",
    )
    a(
        "--experiment",
        metavar="KEY",
        help="the experiment of --config whose current weights the sample ratio is checked "
        "against; e.g. ranker-v2",
    )
    a(
        "--alpha",
        type=_open_unit,
        default=0.05,
        metavar="A",
        help="significance level of the tests and 1 - confidence of the intervals (default "
        "0.05); e.g. --alpha 0.01",
    )
    a(
        "--correction",
        choices=("holm", "bonferroni", "bh", "none"),
        default="holm",
        help="multiple-comparison adjustment over arms x metrics, guardrails excluded "
        "(default holm; bh is Benjamini-Hochberg); e.g. --correction bh",
    )
    a(
        "--srm-alpha",
        type=_open_unit,
        default=0.001,
        metavar="A",
        help="a sample-ratio mismatch is flagged (exit 1) at p below this (default 0.001); "
        "e.g. --srm-alpha 0.0001",
    )
    a(
        "--json",
        action="store_true",
        help="print every figure as JSON instead of the table, e.g. for jq or a dashboard",
    )
    a(
        "--report",
        metavar="FILE.html",
        help="also write a self-contained HTML page: the table and, when matplotlib is "
        "installed, the plot of the lifts; e.g. --report analysis.html",
    )
    analyze.set_defaults(run=_analyze)
    _one_line_errors(analyze)

    size = sub.add_parser(
        "sample-size",
        help="units per arm (and days) a test needs to detect an effect",
        description="Units per arm, in total and (with --daily-units) the days needed to detect\n"
        "a change --mde of a conversion rate (--baseline-rate) or of a mean (--baseline-mean\n"
        "and --sd) with the given --power at level --alpha.",
        epilog=_SAMPLE_SIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s = size.add_argument
    s(
        "--baseline-rate",
        type=_open_unit,
        metavar="P",
        help="the control's conversion rate, for a proportion metric; e.g. 0.10 or 10%%",
    )
    s(
        "--baseline-mean",
        type=_number,
        metavar="M",
        help="the control's mean, for a mean metric (with --sd; needed for a relative --mde); "
        "e.g. 12.5",
    )
    s(
        "--sd",
        type=_positive,
        metavar="S",
        help="the metric's standard deviation per unit, for a mean metric; e.g. 30",
    )
    s(
        "--mde",
        type=_number,
        required=True,
        metavar="X",
        help="the smallest change worth detecting, relative to the baseline (0.05 or 5%% is "
        "+5 %%) unless --absolute; a decrease is negative, written --mde=-5%%; e.g. --mde 2%%",
    )
    s(
        "--absolute",
        action="store_true",
        help="read --mde in the metric's unit (rate points for a proportion), e.g. --mde "
        "0.005 --absolute for 10 %% -> 10.5 %%",
    )
    s(
        "--alpha",
        type=_open_unit,
        default=0.05,
        metavar="A",
        help="significance level (default 0.05); e.g. --alpha 0.01",
    )
    s(
        "--power",
        type=_open_unit,
        default=0.8,
        metavar="P",
        help="chance of detecting an effect of size --mde (default 0.8); e.g. --power 0.9",
    )
    s(
        "--sides",
        type=int,
        choices=(1, 2),
        default=2,
        help="2 for a two-sided test (the default), 1 for one-sided in the direction of --mde; "
        "e.g. --sides 1",
    )
    arms = size.add_mutually_exclusive_group()
    arms.add_argument(
        "--arms",
        type=_arm_count,
        metavar="K",
        help="number of arms with equal shares, control included (default 2); e.g. --arms 3",
    )
    arms.add_argument(
        "--weights",
        type=_weights,
        metavar="ARM=SHARE,...",
        help="the split, control included (see --control); e.g. control=50,a=25,b=25",
    )
    s(
        "--control",
        default="control",
        metavar="NAME",
        help="the control arm among --weights (default control); e.g. --control v1",
    )
    s(
        "--daily-units",
        type=_positive,
        metavar="N",
        help="new units a day that reach the experiment, to say how many days it takes; e.g. 40000",
    )
    s(
        "--exposure",
        type=_exposure,
        default=1.0,
        metavar="F",
        help="share of those daily units that enter the experiment (default 1); e.g. 50%%",
    )
    s("--json", action="store_true", help="print the figures as JSON, e.g. for a planning sheet")
    size.set_defaults(run=_sample_size)
    _one_line_errors(size)


# -- analyze ----------------------------------------------------------------------------------


@dataclass
class _Request:
    """What ``analyze`` compares and the columns each comparison needs."""

    metrics: list[str]
    covariates: dict[str, str]
    ratios: dict[str, tuple[str, str]]
    guardrails: dict[str, _GuardrailSpec]
    guardrail_objects: dict[str, Any]  # metric -> trafficsplit.Guardrail
    groups: dict[str, tuple[str, ...]]
    roles: dict[str, str] = field(default_factory=dict)  # column -> what it is for

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _Request:
        from ..analysis.metrics import Guardrail, column_groups, covariate_columns
        from ..errors import Error

        metrics = list(dict.fromkeys(args.metric))
        ratios = dict(args.ratio)
        guards = {g.metric: g for g in args.guardrail}
        if not (metrics or ratios or guards):
            raise _Failure("name at least one --metric, --ratio or --guardrail")
        clash = [name for name in ratios if name in metrics]
        if clash:
            raise _Failure(f"--ratio {clash[0]!r} has the name of a --metric; rename it")
        named = [m for m, _ in args.covariate]
        twice = [m for m in named if named.count(m) > 1]
        if twice:
            raise _Failure(f"--covariate names metric {twice[0]!r} twice")
        try:
            covariates = covariate_columns(dict(args.covariate) or None, metrics)
        except Error as exc:
            unknown = [m for m in named if m not in metrics]
            raise _Failure(
                f"--covariate {unknown[0] if unknown else ''}: a covariate adjusts a --metric; "
                f"metrics: {', '.join(metrics) or 'none'}"
            ) from exc
        guardrails = {
            g.metric: Guardrail(g.margin, g.relative, g.higher_is_better) for g in guards.values()
        }
        groups = column_groups(metrics, covariates, ratios, guardrails)
        roles: dict[str, str] = {args.arm: "the arm column"}
        for m in metrics:
            roles.setdefault(m, "metric")
        for m, c in covariates.items():
            roles.setdefault(c, f"covariate of {m!r}")
        for name, (num, den) in ratios.items():
            roles.setdefault(num, f"numerator of ratio {name!r}")
            roles.setdefault(den, f"denominator of ratio {name!r}")
        for g in guards:
            roles.setdefault(g, "guardrail")
        return cls(metrics, covariates, ratios, guards, guardrails, groups, roles)

    def unit_columns(self) -> list[str]:
        return list(dict.fromkeys(c for g in self.groups.values() for c in g))

    def sums_columns(self) -> dict[str, str]:
        """The columns of a per-arm sufficient-statistics table, with what each is for."""
        out: dict[str, str] = {"n": "units per arm"}
        for c in self.unit_columns():
            out.setdefault(f"sum__{c}", f"sum of {c!r}")
            out.setdefault(f"sumsq__{c}", f"sum of squares of {c!r}")
        for g in self.groups.values():
            for i in range(len(g)):
                for j in range(i + 1, len(g)):
                    out.setdefault(f"sumprod__{g[i]}__{g[j]}", f"sum of {g[i]!r} x {g[j]!r}")
        return out


@contextlib.contextmanager
def _fail_on_errors(where: str) -> Iterator[None]:
    """Turns a trafficsplit error into a :class:`_Failure` prefixed with ``where``."""
    from ..errors import Error

    try:
        yield
    except Error as exc:
        message = re.sub(r"^analyze: ", "", str(exc).splitlines()[0])
        raise _Failure(f"{where}: {message}") from exc


def _weights_from_config(args: argparse.Namespace) -> tuple[dict[str, float] | None, str]:
    """The split for the sample-ratio check and where it comes from."""
    if args.weights is not None:
        if args.experiment is not None:
            raise _Failure("--experiment goes with --config, not --weights")
        return dict(args.weights), "--weights"
    if args.config is None:
        if args.experiment is not None:
            raise _Failure("--experiment needs --config (the configuration that defines it)")
        return None, _EQUAL
    if args.experiment is None:
        raise _Failure(f"--config {args.config}: name the experiment with --experiment")
    from ..config import ConfigValidationError, as_snapshot
    from ..errors import Error

    try:
        snapshot = as_snapshot(args.config, "trafficsplit analyze --config")
    except ConfigValidationError as exc:
        first, count = exc.issues[0], len(exc.issues)
        more = f" (and {count - 1} more: trafficsplit validate lists them)" if count > 1 else ""
        where = "" if first.file else f"{args.config}: "
        raise _Failure(f"{where}{first}{more}") from exc
    except Error as exc:
        raise _Failure(f"{args.config}: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _Failure(f"{args.config}: {exc}") from exc
    experiment = snapshot.experiments.get(args.experiment)
    if experiment is None:
        have = ", ".join(snapshot.experiments) or "none"
        raise _Failure(
            f"{args.config}: no experiment {args.experiment!r} (--experiment); experiments: {have}"
        )
    weights = {str(k): float(v) for k, v in experiment.experiment.weights.items()}
    return weights, f"experiment {args.experiment!r} in {args.config}"


def _input_format(path: Path, choice: str) -> str:
    if choice != "auto":
        return choice
    if path.is_dir():
        # the files pyarrow reads: none below a name that starts with "." or "_" (_SUCCESS)
        files = [
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        ]
        if not files:
            raise _Failure(f"{path}: the folder holds no data files")
        csv = [p for p in files if p.name.lower().endswith(_CSV_SUFFIXES)]
        if csv and len(csv) != len(files):
            raise _Failure(
                f"{path}: the folder mixes CSV files ({csv[0].name}) with others; choose one "
                "with --format"
            )
        return "csv" if csv else "parquet"
    return "csv" if path.name.lower().endswith(_CSV_SUFFIXES) else "parquet"


def _open_dataset(path_text: str, choice: str) -> Any:
    ds = require("pyarrow.dataset", what="trafficsplit analyze")
    pa = require("pyarrow", what="trafficsplit analyze")
    path = Path(path_text)
    if not path.exists():
        raise _Failure(f"{path_text}: no such file or folder (--input)")
    fmt = _input_format(path, choice)
    try:
        dataset = ds.dataset(str(path), format=fmt, partitioning="hive" if path.is_dir() else None)
        dataset.schema  # noqa: B018  (reads the Parquet footers or the CSV header now)
    except (pa.ArrowException, OSError) as exc:
        raise _Failure(f"{path_text}: cannot be read as {fmt} ({_arrow_message(exc)})") from exc
    return dataset


def _arrow_message(exc: BaseException, names: Sequence[str] = ()) -> str:
    """An Arrow error in one line; a CSV column number becomes its name."""
    text = " ".join(str(exc).split())

    def column(match: re.Match[str]) -> str:
        i = int(match.group(1))
        return f"column {names[i]!r}" if i < len(names) else match.group(0)

    return re.sub(r"CSV column #(\d+)", column, text)


def _plan_columns(names: Sequence[str], arm: str, request: _Request) -> tuple[str, list[str]]:
    """The layout of the input ("units" or "sums") and the columns to read."""
    have = set(names)
    units = request.unit_columns()
    if arm in have and all(c in have for c in units):
        return "units", [arm, *units]
    sums = request.sums_columns()
    looks_like_sums = "n" in have and any(c.startswith("sum__") for c in have)
    listing = ", ".join(names[:30]) + (f", ... ({len(names)} columns)" if len(names) > 30 else "")
    if arm not in have:
        raise _Failure(f"no column {arm!r} (--arm, the arm column); columns: {listing}")
    if looks_like_sums:
        missing = [c for c in sums if c not in have]
        if not missing:
            return "sums", [arm, *sums]
        raise _Failure(
            f"no column {missing[0]!r} ({sums[missing[0]]}) in this sufficient-statistics "
            f"table; columns: {listing}"
        )
    missing = [c for c in units if c not in have]
    raise _Failure(f"no column {missing[0]!r} ({request.roles[missing[0]]}); columns: {listing}")


def _check_types(schema: Any, layout: str, columns: list[str], request: _Request) -> None:
    pa = require("pyarrow", what="trafficsplit analyze")
    sums = request.sums_columns()
    for name in columns[1:]:
        t = schema.field(name).type
        ok = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        if layout == "units":
            ok = ok or pa.types.is_boolean(t)
        if ok:
            continue
        role = request.roles.get(name) if layout == "units" else sums.get(name)
        needs = "numbers or booleans" if layout == "units" else "numbers"
        what = "no values (every cell empty)" if pa.types.is_null(t) else f"type {t}"
        raise _Failure(f"column {name!r} ({role}) has {what}; it needs {needs}")


def _read(dataset: Any, path_text: str, columns: list[str]) -> Any:
    """The columns as a pyarrow Table, every value column as float64."""
    pa = require("pyarrow", what="trafficsplit analyze")
    try:
        table = dataset.to_table(columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise _Failure(f"{path_text}: {_arrow_message(exc, dataset.schema.names)}") from exc
    for i, name in enumerate(table.column_names[1:], start=1):
        if not pa.types.is_float64(table.schema.field(name).type):
            table = table.set_column(i, name, table.column(name).cast(pa.float64(), safe=False))
    return table


def _analyze(args: argparse.Namespace) -> int:
    try:
        return _run_analyze(args)
    except (_Failure, ImportError) as exc:  # ImportError: an extra to install, named
        print(f"trafficsplit analyze: error: {exc}", file=sys.stderr)
        return 2


def _run_analyze(args: argparse.Namespace) -> int:
    report = Path(args.report) if args.report else None
    if report is not None and not report.parent.is_dir():
        raise _Failure(f"{args.report}: no folder {str(report.parent)!r} to write the report in")
    if report is not None and report.is_dir():
        raise _Failure(f"{args.report}: is a folder; --report takes a file name")
    request = _Request.from_args(args)
    weights, weights_source = _weights_from_config(args)
    require("pandas", what="trafficsplit analyze")
    dataset = _open_dataset(args.input, args.format)
    names = list(dataset.schema.names)
    try:
        layout, columns = _plan_columns(names, args.arm, request)
        _check_types(dataset.schema, layout, columns, request)
    except _Failure as exc:
        raise _Failure(f"{args.input}: {exc}") from None
    table = _read(dataset, args.input, columns)
    if weights is not None:
        pc = require("pyarrow.compute", what="trafficsplit analyze")
        present = [str(v) for v in pc.unique(table.column(0)).to_pylist() if v is not None]
        unknown = [a for a in present if a not in weights]
        if unknown:
            raise _Failure(
                f"{args.input}: arm {unknown[0]!r} is in the data but not in the split of "
                f"{weights_source} ({', '.join(weights)})"
            )

    from ..analysis import analyze

    with _fail_on_errors(args.input):
        result = analyze(
            table,
            arm=args.arm,
            metrics=request.metrics,
            control=args.control,
            covariates=request.covariates or None,
            ratio_metrics=request.ratios or None,
            guardrails=request.guardrail_objects or None,
            alpha=args.alpha,
            correction=args.correction,
            weights=weights,
            srm_alpha=args.srm_alpha,
        )
    expected = weights if weights is not None else {a: 1.0 for a in result.arms}
    info = _Info(args.input, layout, weights_source, expected, request)
    text = _analysis_json(result, info) if args.json else _analysis_text(result, info)
    if report is not None:
        _write_atomically(report, _report_html(result, info))
    sys.stdout.write(text)
    if result.srm.mismatch:
        print(
            f"trafficsplit analyze: sample-ratio mismatch (p = {result.srm.pvalue:.3g} < "
            f"{result.srm.alpha:g}): the comparisons are not trustworthy",
            file=sys.stderr,
        )
        return 1
    return 0


@dataclass(frozen=True)
class _Info:
    """Where an analysis came from, for its printed and written forms."""

    input: str
    layout: str
    weights_source: str
    weights: Mapping[str, float]
    request: _Request

    @property
    def layout_text(self) -> str:
        return "one row per unit" if self.layout == "units" else "per-arm sufficient statistics"


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:+.{digits}f} %"


def _p(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [
            r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i])
            for i in range(len(header))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _analysis_text(res: Any, info: _Info) -> str:
    units = sum(res.counts.values())
    level = f"{(1 - res.alpha) * 100:g} % CI"
    header = ["metric", "arm", "units", "mean", "lift", level, "p", "adj. p", "decision", "CUPED"]
    rows: list[list[str]] = []
    seen: set[str] = set()
    for r in res.results:
        if r.metric not in seen:
            seen.add(r.metric)
            rows.append(
                [r.metric, res.control, f"{r.control_n:,}", f"{r.control_mean:.6g}"]
                + [""] * 4
                + ["control", ""]
            )
        rel = r.relative
        ci = f"[{_pct(rel.ci[0])}, {_pct(rel.ci[1])}]" if rel is not None else "n/a"
        guard = r.kind == "guardrail"
        rows.append(
            [
                r.metric,
                r.arm,
                f"{r.n:,}",
                f"{r.mean:.6g}",
                _pct(rel.estimate) if rel is not None else "n/a",
                ci,
                _p(r.pvalue),
                "" if guard else _p(r.adjusted_pvalue),
                r.decision,
                f"-{r.variance_reduction * 100:.0f} %" if r.variance_reduction is not None else "",
            ]
        )
    out = [
        f"{info.input}: {units:,} units ({info.layout_text}); control {res.control!r}, "
        f"alpha {res.alpha:g}",
        "",
        *_table(header, rows, {2, 3, 4, 6, 7}),
        "",
    ]
    compared = sum(1 for r in res.results if r.kind != "guardrail")
    adjusted = {
        "holm": "Holm",
        "bonferroni": "Bonferroni",
        "bh": "Benjamini-Hochberg",
        "none": "not",
    }[res.correction]
    notes = [
        f"lift: arm / control - 1 with its {level}. p: Welch t-test, CUPED-adjusted where the "
        "CUPED column shows the variance removed, delta method for ratios; adj. p: "
        f"{adjusted} adjusted over {compared} comparison{'s' if compared != 1 else ''}; "
        f"decisions at alpha {res.alpha:g}."
    ]
    for g in info.request.guardrails.values():
        notes.append(
            f"guardrail {g.metric}: {g.describe()}; p is the non-inferiority p-value; pass = "
            "not worse by the margin, harm = significantly worse, inconclusive = neither."
        )
    out += [line for note in notes for line in textwrap.wrap(note, 100)]
    out += ["", *_srm_lines(res, info)]
    return "\n".join(out) + "\n"


def _srm_lines(res: Any, info: _Info) -> list[str]:
    srm = res.srm
    names = list(info.weights)
    observed_total = sum(srm.observed) or 1.0
    expected_total = sum(srm.expected) or 1.0
    rows = [
        [
            f"  {name}",
            f"{int(obs):,}",
            f"{obs / observed_total * 100:.2f} %",
            f"expected {exp / expected_total * 100:.2f} %",
        ]
        for name, obs, exp in zip(names, srm.observed, srm.expected, strict=True)
    ]
    verdict = (
        f"MISMATCH (p < {srm.alpha:g}): units were lost or assigned unevenly, so the "
        "comparisons above are not trustworthy"
        if srm.mismatch
        else f"no mismatch (one is flagged at p < {srm.alpha:g})"
    )
    source = info.weights_source
    if source == _EQUAL:
        source += " (--weights or --config check the configured split)"
    return [
        f"sample ratio, expected from {source}:",
        *_table(["  arm", "units", "share", ""], rows, {1, 2}),
        f"  chi-square {srm.statistic:.4g}, df {srm.df}, p = {srm.pvalue:.3g}: {verdict}",
    ]


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _test_json(t: Any) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "estimate": _finite(float(t.estimate)),
        "ci_low": _finite(float(t.ci[0])),
        "ci_high": _finite(float(t.ci[1])),
        "se": _finite(float(t.se)),
        "pvalue": _finite(float(t.pvalue)),
        "statistic": _finite(float(t.statistic)),
        "df": None if t.df is None else _finite(float(t.df)),
        "method": t.method,
    }


def _analysis_json(res: Any, info: _Info) -> str:
    srm = res.srm
    names = list(info.weights)
    doc = {
        "input": info.input,
        "layout": info.layout,
        "control": res.control,
        "alpha": res.alpha,
        "correction": res.correction,
        "arms": list(res.arms),
        "counts": {str(k): int(v) for k, v in res.counts.items()},
        "srm": {
            "weights": dict(info.weights),
            "weights_from": info.weights_source,
            "observed": {a: int(v) for a, v in zip(names, srm.observed, strict=True)},
            "expected": dict(zip(names, srm.expected, strict=True)),
            "statistic": _finite(srm.statistic),
            "df": srm.df,
            "pvalue": _finite(srm.pvalue),
            "alpha": srm.alpha,
            "mismatch": srm.mismatch,
        },
        "results": [
            {
                "metric": r.metric,
                "arm": r.arm,
                "kind": r.kind,
                "method": r.method,
                "n": r.n,
                "mean": _finite(float(r.mean)),
                "control_n": r.control_n,
                "control_mean": _finite(float(r.control_mean)),
                "absolute": _test_json(r.absolute),
                "relative": _test_json(r.relative),
                "pvalue": _finite(r.pvalue),
                "adjusted_pvalue": _finite(r.adjusted_pvalue),
                "decision": r.decision,
                "variance_reduction": None
                if r.variance_reduction is None
                else _finite(r.variance_reduction),
            }
            for r in res.results
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _report_html(res: Any, info: _Info) -> str:
    from ..analysis.report import render

    units = sum(res.counts.values())
    details = [
        f"Input {info.input}: {units:,} units ({info.layout_text}); sample ratio expected from "
        f"{info.weights_source}."
    ]
    notes = {g.metric: g.describe() for g in info.request.guardrails.values()}
    return render(
        res,
        title=f"Experiment analysis: {info.input}",
        details=details,
        guardrail_notes=notes,
    )


def _write_atomically(path: Path, text: str) -> None:
    """The page written whole or not at all, or a failure naming the file."""
    from ..analysis.report import write_atomically

    try:
        write_atomically(path, text)
    except OSError as exc:
        raise _Failure(f"{path}: the report cannot be written ({exc.strerror or exc})") from exc


# -- sample-size ------------------------------------------------------------------------------


def _sample_size(args: argparse.Namespace) -> int:
    try:
        return _run_sample_size(args)
    except _Failure as exc:
        print(f"trafficsplit sample-size: error: {exc}", file=sys.stderr)
        return 2


def _ceil_units(x: float) -> int:
    # As the power functions round: floating error in an integral size does not add a unit.
    return math.ceil(x * (1 - 1e-12))


def _run_sample_size(args: argparse.Namespace) -> int:
    from ..errors import Error
    from ..stats import days_needed, sample_size_means, sample_size_proportions

    proportion = args.baseline_rate is not None
    mean = args.sd is not None or args.baseline_mean is not None
    if proportion and mean:
        raise _Failure(
            "--baseline-rate is for a proportion, --baseline-mean/--sd for a mean: not both"
        )
    if not (proportion or mean):
        raise _Failure(
            "give --baseline-rate for a proportion, or --sd (and --baseline-mean) for a mean"
        )
    if mean and args.sd is None:
        raise _Failure("a mean needs --sd, its standard deviation per unit")
    relative = not args.absolute
    if mean and relative and args.baseline_mean is None:
        raise _Failure(
            "a relative --mde on a mean needs --baseline-mean (or read it with --absolute)"
        )
    if mean and relative and args.baseline_mean == 0:
        raise _Failure("a relative --mde needs a nonzero --baseline-mean")
    if args.mde == 0:
        raise _Failure("--mde must be nonzero")
    if proportion:
        after = args.baseline_rate * (1 + args.mde) if relative else args.baseline_rate + args.mde
        if not 0 < after < 1:
            raise _Failure(
                f"--mde {args.mde:g}{'' if relative else ' --absolute'} moves the rate "
                f"{args.baseline_rate:g} to {after:g}, outside (0, 1)"
            )

    if args.weights is not None:
        weights = dict(args.weights)
        if args.control not in weights:
            raise _Failure(
                f"--weights has no arm {args.control!r} (--control); arms: {', '.join(weights)}"
            )
    else:
        k = args.arms or 2
        names = ["treatment"] if k == 2 else [f"treatment-{i}" for i in range(1, k)]
        weights = {args.control: 1.0, **dict.fromkeys(names, 1.0)}
        if len(weights) != k:
            raise _Failure(f"--control {args.control!r} clashes with the treatment names")
    control = args.control
    treatments = [a for a in weights if a != control]
    ratios = {t: weights[t] / weights[control] for t in treatments}

    def size(ratio: float) -> Any:
        common = {
            "alpha": args.alpha,
            "power": args.power,
            "sides": args.sides,
            "ratio": ratio,
            "relative": relative,
            "arms": len(weights),
        }
        if proportion:
            return sample_size_proportions(args.baseline_rate, args.mde, **common)
        return sample_size_means(args.sd, args.mde, mean=args.baseline_mean, **common)

    try:
        sizes = {r: size(r) for r in set(ratios.values())}
        binding = max(sizes.values(), key=lambda s: s.exact)
        units = {control: binding.control}
        for t, r in ratios.items():
            s = sizes[r]
            units[t] = s.treatment if s is binding else _ceil_units(binding.exact * r)
        total = sum(units.values())
        days = (
            days_needed(total, args.daily_units, args.exposure)
            if args.daily_units is not None
            else None
        )
    except Error as exc:
        message = re.sub(r"^\w+: ", "", str(exc))
        raise _Failure(message) from exc

    baseline = args.baseline_rate if proportion else args.baseline_mean
    absolute = args.mde * baseline if relative else args.mde
    rel = absolute / abs(baseline) if baseline else None
    alpha_each = args.alpha / (len(weights) - 1)
    share_total = sum(weights.values())
    if args.json:
        doc = {
            "metric": "proportion" if proportion else "mean",
            "baseline": baseline,
            "sd": None if proportion else args.sd,
            "mde": {"absolute": absolute, "relative": rel},
            "alpha": args.alpha,
            "alpha_per_comparison": alpha_each,
            "power": args.power,
            "sides": args.sides,
            "control": control,
            "arms": {a: {"share": weights[a] / share_total, "units": units[a]} for a in weights},
            "total": total,
            "exact_control": binding.exact,
            "daily_units": args.daily_units,
            "exposure": args.exposure,
            "days": days,
        }
        print(json.dumps(doc, indent=2))
        return 0

    if proportion:
        after = baseline + absolute
        target = (
            f"detect {absolute / baseline * 100:+.4g} % on a conversion rate of "
            f"{baseline * 100:.4g} % ({absolute * 100:+.4g} percentage points: "
            f"{baseline * 100:.4g} % -> {after * 100:.4g} %)"
        )
    elif rel is not None:
        target = (
            f"detect {rel * 100:+.4g} % on a mean of {baseline:.4g} ({absolute:+.4g}; standard "
            f"deviation {args.sd:.4g})"
        )
    else:
        target = f"detect {absolute:+.4g} on a mean with standard deviation {args.sd:.4g}"
    test = f"{'two' if args.sides == 2 else 'one'}-sided test, alpha {args.alpha:g}"
    if len(weights) > 2:
        test += f" ({alpha_each:.4g} per comparison: Bonferroni over {len(treatments)} comparisons)"
    lines = [target, f"{test}, power {args.power * 100:g} %", ""]
    rows = [[a, f"{weights[a] / share_total * 100:.1f} %", f"{units[a]:,}"] for a in weights]
    rows.append(["total", "", f"{total:,}"])
    lines += _table(["arm", "share", "units"], rows, {1, 2})
    if days is not None:
        entering = "all of them enter" if args.exposure == 1 else f"{args.exposure * 100:g} % enter"
        lines += [
            "",
            f"days: {days:,} at {args.daily_units:,.0f} units a day ({entering})",
        ]
    print("\n".join(lines))
    return 0
