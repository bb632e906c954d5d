"""Rules of the C++ tree that the compiler does not enforce, read from the sources.

- pybind11 is included only through ``cpp/bindings/bindings.hpp`` (one set of type casters per
  module: a ``std::vector`` caster seen with and without ``<pybind11/stl.h>`` in two files is an
  ODR violation), and never by the core (``cpp/include``, ``cpp/src``), which knows no Python.
- Every Python-visible name is defined once: a module-level name in one submodule only, a
  class member once per class. The parser is checked against the built module, so a binding it
  cannot read fails the test instead of escaping it.
- No binding keeps a Python object in a plain ``static``: its destructor would run after the
  interpreter is finalized, and its first initialisation can deadlock with the GIL.
- The ``_core`` stubs match the extension (mypy's stubtest).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import trafficsplit._core as core

ROOT = Path(__file__).resolve().parent.parent
BINDINGS = ROOT / "cpp" / "bindings"
SHARED_HEADER = "bindings.hpp"

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def binding_files() -> list[Path]:
    files = sorted(p for p in BINDINGS.iterdir() if p.suffix in (".cpp", ".hpp"))
    assert len(files) >= 10, files
    return files


def includes(text: str) -> list[str]:
    return INCLUDE.findall(strip_comments(text))


def strip_comments(text: str) -> str:
    """C++ source without comments; string and character literals are kept as they are."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            out.append(" ")
            i = n if j < 0 else j + 2
        elif starts_literal(text, i):
            j = skip_literal(text, i)
            out.append(text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def starts_literal(text: str, i: int) -> bool:
    """A string or character literal opens at ``i`` (``10'000`` is a digit separator)."""
    return text[i] == '"' or (text[i] == "'" and not (i and text[i - 1].isalnum()))


def skip_literal(text: str, i: int) -> int:
    """The index just past the string or character literal starting at ``i``."""
    quote = text[i]
    j = i + 1
    while j < len(text) and text[j] != quote:
        j += 2 if text[j] == "\\" else 1
    return j + 1


def is_python_header(name: str) -> bool:
    return name.startswith("pybind11/") or name in ("Python.h", "datetime.h")


# -- includes ---------------------------------------------------------------------------------
def test_only_the_shared_header_includes_pybind11():
    offenders = []
    for path in binding_files():
        if path.name == SHARED_HEADER:
            continue
        for name in includes(path.read_text()):
            if name.startswith("pybind11/") or name == "Python.h":
                offenders.append(f"{path.relative_to(ROOT)} includes <{name}>")
    assert not offenders, "include bindings.hpp instead:\n" + "\n".join(offenders)
    shared = includes((BINDINGS / SHARED_HEADER).read_text())
    for header in ("pybind11/pybind11.h", "pybind11/stl.h", "pybind11/numpy.h"):
        assert header in shared


def test_every_binding_file_sees_the_shared_header():
    local = {p.name: includes(p.read_text()) for p in binding_files()}

    def reaches(name: str, seen: set[str]) -> bool:
        if name == SHARED_HEADER:
            return True
        seen.add(name)
        return any(reaches(h, seen) for h in local.get(name, []) if h in local and h not in seen)

    missing = [n for n in local if n != SHARED_HEADER and not reaches(n, set())]
    assert not missing, f"these binding files do not include {SHARED_HEADER}: {missing}"


def test_the_core_includes_no_python():
    files = [
        p
        for d in ("cpp/include", "cpp/src")
        for p in (ROOT / d).rglob("*")
        if p.suffix in (".cpp", ".hpp", ".h")
    ]
    assert len(files) > 20
    offenders = [
        f"{p.relative_to(ROOT)} includes <{name}>"
        for p in files
        for name in includes(p.read_text())
        if is_python_header(name)
    ]
    assert not offenders, "\n".join(offenders)


def test_include_parser_sees_through_comments():
    text = "// #include <pybind11/stl.h>\n/* #include <Python.h> */\n#include <pybind11/numpy.h>\n"
    assert includes(text) == ["pybind11/numpy.h"]
    assert is_python_header("Python.h") and not is_python_header("vector")


# -- names defined once -----------------------------------------------------------------------
MEMBER = re.compile(
    r"\.(def|def_static|def_property_readonly|def_property|def_readonly|def_readwrite)"
    r'\(\s*"(\w+)"'
)
MODULE_DEF = re.compile(r'\bm\.def\(\s*"(\w+)"')
MODULE_ATTR = re.compile(r'\bm\.attr\(\s*"(\w+)"\s*\)\s*=')
CLASS = re.compile(r'py::class_<[^;]*?>\(\s*m\s*,\s*"(\w+)"')
REGISTER_DEF = re.compile(r"\bvoid\s+(register_\w+)\s*\(\s*py::module_&\s*m\s*\)\s*\{")
REGISTER_CALL = re.compile(r"\b(register_\w+)\((\w+)\)\s*;")
SUBMODULE = re.compile(r'\bauto\s+(\w+)\s*=\s*m\.def_submodule\(\s*"(\w+)"')


def block_end(text: str, open_at: int) -> int:
    """The index of the bracket closing the one at ``open_at`` (literals skipped)."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    stack = [pairs[text[open_at]]]
    i = open_at + 1
    while stack:
        c = text[i]
        if starts_literal(text, i):
            i = skip_literal(text, i)
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c == stack[-1]:
            stack.pop()
        i += 1
    return i - 1


def statement_end(text: str, start: int) -> int:
    """The index of the ``;`` ending the statement that starts at ``start``."""
    i = start
    while text[i] != ";":
        if starts_literal(text, i):
            i = skip_literal(text, i)
        elif text[i] in "({[":
            i = block_end(text, i) + 1
        else:
            i += 1
    return i


class Definitions:
    """The names each registration function defines on its module object ``m``."""

    def __init__(self) -> None:
        # register function -> (name, where) it defines on m; class -> (member, where);
        # register function -> the register functions it calls on the same m
        self.names: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.members: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.calls: dict[str, list[str]] = defaultdict(list)

    def read(self, text: str, where: str) -> None:
        text = strip_comments(text)
        for reg in REGISTER_DEF.finditer(text):
            body_start = reg.end() - 1
            body = text[body_start : block_end(text, body_start) + 1]
            fn = reg.group(1)
            self.calls[fn] += [
                c.group(1) for c in REGISTER_CALL.finditer(body) if c.group(2) == "m"
            ]
            classes = []
            for cls in CLASS.finditer(body):
                end = statement_end(body, cls.start())
                classes.append((cls.start(), end))
                self.names[fn].append((cls.group(1), f"class in {where}"))
                for member in MEMBER.finditer(body, cls.end(), end):
                    self.members[cls.group(1)].append((member.group(2), where))
            for match in MODULE_DEF.finditer(body):
                if not any(a <= match.start() <= b for a, b in classes):
                    self.names[fn].append((match.group(1), f"function in {where}"))
            for match in MODULE_ATTR.finditer(body):
                self.names[fn].append((match.group(1), f"attribute in {where}"))

    def module_names(self, fn: str) -> list[tuple[str, str]]:
        """What ``fn`` defines on its module, with what the functions it calls on ``m`` add."""
        out = list(self.names.get(fn, []))
        for callee in self.calls.get(fn, []):
            out += self.module_names(callee)
        return out


def submodules_by_register(module_cpp: str) -> dict[str, list[str]]:
    """Submodule name ('' for _core itself) -> the register functions module.cpp calls on it."""
    text = strip_comments(module_cpp)
    variables = {m.group(1): m.group(2) for m in SUBMODULE.finditer(text)}
    out: dict[str, list[str]] = defaultdict(list)
    for call in REGISTER_CALL.finditer(text):
        target = call.group(2)
        out["" if target == "m" else variables[target]].append(call.group(1))
    return out


def duplicates(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = defaultdict(list)
    for name, place in pairs:
        where[name].append(place)
    return {n: places for n, places in where.items() if len(places) > 1}


def parse_bindings() -> tuple[dict[str, list[tuple[str, str]]], Definitions]:
    defs = Definitions()
    for path in binding_files():
        if path.suffix == ".cpp" and path.name != "module.cpp":
            defs.read(path.read_text(), path.name)
    modules = submodules_by_register((BINDINGS / "module.cpp").read_text())
    names = {
        sub: [pair for fn in fns for pair in defs.module_names(fn)] for sub, fns in modules.items()
    }
    return names, defs


def test_each_python_name_is_defined_once():
    names, defs = parse_bindings()
    everywhere = [
        (n, f"_core.{sub}: {place}") for sub, pairs in names.items() for n, place in pairs
    ]
    twice = duplicates(everywhere)
    assert not twice, f"defined more than once (bind each function in one submodule): {twice}"
    for cls, members in defs.members.items():
        twice = duplicates(members)
        assert not twice, f"class {cls} defines these more than once: {twice}"


def test_the_name_parser_reads_what_the_module_holds():
    # Every runtime name must be found by the parser (and nothing else), or the duplicate check
    # above would pass on names it never saw.
    names, defs = parse_bindings()
    assert {"", "hashing", "assignment", "stats", "targeting", "bandit", "telemetry"} <= set(names)
    for sub, pairs in names.items():
        module = getattr(core, sub) if sub else core
        runtime = {
            n
            for n, v in vars(module).items()
            if not n.startswith("__") and not isinstance(v, type(core))
        }
        assert {n for n, _ in pairs} == runtime, sub
        for n, _ in pairs:
            obj = getattr(module, n)
            if isinstance(obj, type):
                members = {m for m, _ in defs.members[n] if not m.startswith("__")}
                runtime_members = {
                    m for m in vars(obj) if not m.startswith(("__", "_pybind11_"))
                }  # pybind11 adds _pybind11_conduit_v1_ to every class
                assert members == runtime_members, n


def test_the_duplicate_check_can_fail():
    defs = Definitions()
    defs.read(
        """
        void register_a(py::module_& m) {
          register_units(m);
          m.def("apportion", [](int x) { return x; }, py::arg("x"));
          py::class_<Thing>(m, "Thing").def("copy", [](const Thing& t) { return t; })
              .def("f", [](int y) { if (y) { return ";"; } return ")"; })
              .def_property_readonly("copy", &Thing::copy);
        }
        void register_units(py::module_& m) { m.def(
            "apportion", &apportion); m.attr("LIMIT") = 3; }
        """,
        "a.cpp",
    )
    found = defs.module_names("register_a")
    assert duplicates(found) == {"apportion": ["function in a.cpp", "function in a.cpp"]}
    assert {n for n, _ in found} == {"apportion", "Thing", "LIMIT"}
    assert duplicates(defs.members["Thing"]) == {"copy": ["a.cpp", "a.cpp"]}
    assert submodules_by_register(
        'auto s = m.def_submodule("stats", "x");\nregister_a(s);\nregister_b(m);'
    ) == {"stats": ["register_a"], "": ["register_b"]}


# -- Python objects in statics ----------------------------------------------------------------
STATIC_VARIABLE = re.compile(
    r"^\s*(?:PYBIND11_CONSTINIT\s+)?(?:thread_local\s+)?static\s+(?:const\s+)?"
    r"(?P<type>[\w:<>,\s*&]+?)\s*[*&]?\s*(?P<name>\w+)\s*(?:=|;|\{)",
    re.M,
)


def python_statics(text: str) -> list[str]:
    out = []
    for match in STATIC_VARIABLE.finditer(strip_comments(text)):
        kind = match.group("type")
        if "gil_safe_call_once_and_store" in kind:
            continue
        if re.search(r"\bpy::|\bPyObject\b|\bpybind11::", kind):
            out.append(f"static {kind} {match.group('name')}")
    return out


def test_no_python_object_lives_in_a_plain_static():
    offenders = {p.name: found for p in binding_files() if (found := python_statics(p.read_text()))}
    assert not offenders, (
        "use py::gil_safe_call_once_and_store (see bindings.hpp) or a module attribute: "
        f"{offenders}"
    )


def test_the_static_check_can_fail():
    text = """
    static py::object cached = errors.attr("ConfigError");
    static PyObject* np_integer = numpy_type("integer");
      static std::array<py::object, 3> names;
    static const py::str label{"x"};
    PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<Types> storage;
    static py::object get(const py::object& mapping, const py::object& key) {
    static std::shared_ptr<AttrColumn> missing(size_t n) {
    static int counter = 0;
    """
    found = python_statics(text)
    assert [f.split()[-1] for f in found] == ["cached", "np_integer", "names", "label"]


# -- stubs ------------------------------------------------------------------------------------
def test_core_stubs_match_the_extension():
    env = {**os.environ, "MYPYPATH": str(ROOT / "python")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "trafficsplit._core",
            "--allowlist",
            str(ROOT / "tests" / "stubtest-allowlist.txt"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_statistics_results_are_read_only_classes():
    r = core.stats.cuped(
        (100, 1.0, 1.0, 2.0, 2.0, 0.5), (100, 1.2, 1.0, 2.0, 2.0, 0.5), 0.05, False, "two-sided"
    )
    assert isinstance(r, core.stats.CupedStat)
    assert isinstance(r.adjusted, core.stats.TestStat)
    assert r.theta == 0.25  # cov / var of the pooled covariate
    with pytest.raises(AttributeError):
        r.theta = 1.0  # type: ignore[misc]
    for cls in (core.stats.TestStat, core.stats.CupedStat, core.stats.NormalPosterior):
        with pytest.raises(TypeError):
            cls()
    fields = ("estimate", "se", "statistic", "df", "pvalue", "ci_low", "ci_high", "bounded")
    shown = ", ".join(f"{f}={getattr(r.adjusted, f)!r}" for f in fields)
    assert repr(r.adjusted) == f"TestStat({shown})"
