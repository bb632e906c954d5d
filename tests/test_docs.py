"""Every python example in README.md and docs/ runs and shows what it says.

The rules a page follows (docs/writing-docs.md says the same for writers):

- Every fenced block whose info string is ``python`` or ``py`` runs. A page's blocks run in
  order in one namespace, in a fresh temporary working directory, as one test named after the
  page (``docs/telemetry.md``). Blocks that are not Python say what they are: ``text``, ``sh``,
  ``yaml``, ``sql``.
- ``expression  # -> expected`` on the last line of a top-level statement (or alone on the line
  below it) checks its value (for ``name = expression  # -> expected``, the value bound to
  ``name``). When ``expected`` is a Python literal the value must equal it (arrays element by
  element); otherwise ``repr(value)`` must read ``expected``, where ``...`` stands for any text.
  A colon outside quotes and brackets ends ``expected`` and starts a remark. Other comments are
  prose.
- An ``output`` block right after a python block is what that block prints, exactly
  (``...`` stands for any text).
- ``<!-- docs-test: file PATH -->`` on the line before a block (any info string) writes that
  block to ``PATH`` in the working directory before the page's first python block runs: the
  YAML a page shows is the configuration its examples load.
- ``<!-- docs-test: fixture NAME -->`` in a page runs the fixture ``NAME`` of ``FIXTURES``
  below before the page's first block. Fixtures only make what a reader already has: input
  files, a running server, the names a page says it assumes. They never replace the library.
- ``<!-- docs-test: skip REASON -->`` in a page skips its test here; REASON names the test that
  runs the page's blocks, with these same checks, where what they need is at hand (a Spark
  session: tests/test_spark.py runs docs/spark.md).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shutil
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from redis_server import redis_url  # noqa: F401  (a page's fixture may start the server)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PYTHON = {"python", "py"}
CHECK = re.compile(r"#\s*->\s?(?P<expected>.*?)\s*$")
CLOSING = {"(": ")", "[": "]", "{": "}"}
FIXTURE = re.compile(r"^\s*<!--\s*docs-test:\s*fixture\s+(?P<name>[\w-]+)\s*-->\s*$", re.M)
FILE = re.compile(r"^\s*<!--\s*docs-test:\s*file\s+(?P<path>\S+)\s*-->\s*$")
SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s+(?P<reason>.*?\S)\s*-->\s*$", re.M)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


@dataclass
class Block:
    info: str
    line: int
    """1-based line of the block's first content line in the page."""
    code: str
    output: str | None = None


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    fixtures: list[str] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)
    """(path, text) of the blocks marked ``<!-- docs-test: file PATH -->``."""
    skip: str | None = None
    """Where the page's blocks run instead (``<!-- docs-test: skip REASON -->``)."""

    @property
    def name(self) -> str:
        return (
            self.path.relative_to(ROOT).as_posix()
            if self.path.is_relative_to(ROOT)
            else self.path.name
        )


def parse_page(path: Path) -> Page:
    """The fenced blocks of a Markdown page, with each ``output`` block attached to the python
    block right before it (blank lines between them allowed)."""
    text = path.read_text(encoding="utf-8")
    skip = SKIP.search(text)
    page = Page(path, fixtures=FIXTURE.findall(text), skip=skip["reason"] if skip else None)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    last_end: int | None = None  # the line after the previous block, for ``output`` blocks
    file: tuple[str, int] | None = None  # a pending file directive: its path and line
    i = 0
    while i < len(lines):
        opener = FENCE.match(lines[i])
        if opener is None:
            if directive := FILE.match(lines[i]):
                file = (directive["path"], i + 1)
            elif file is not None and lines[i].strip():
                raise AssertionError(
                    f"{page.name}:{file[1]}: a file directive must precede a block"
                )
            i += 1
            continue
        indent, fence = len(opener["indent"]), opener["fence"]
        closer = re.compile(rf"^[ \t]*{fence[0]}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closer.match(lines[j]):
            text = lines[j]
            body.append(text[indent:] if text[:indent].strip() == "" else text.lstrip())
            j += 1
        if j == len(lines):
            raise AssertionError(f"{page.name}:{i + 1}: the fence opened here is never closed")
        info = opener["info"].lower()
        code = "\n".join(body) + "\n"
        between = lines[last_end:i] if last_end is not None else ["x"]
        if file is not None:
            target = Path(file[0])
            if target.is_absolute() or ".." in target.parts:
                raise AssertionError(
                    f"{page.name}:{file[1]}: file paths stay in the working folder"
                )
            page.files.append((file[0], code))
            file = None
        if info == "output":
            if not blocks or blocks[-1].info not in PYTHON or any(s.strip() for s in between):
                raise AssertionError(
                    f"{page.name}:{i + 1}: an output block must follow a python block"
                )
            blocks[-1].output = code
        else:
            blocks.append(Block(info, i + 2, code))
        last_end = j + 1
        i = j + 1
    page.blocks = [b for b in blocks if b.info in PYTHON]
    return page


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def split_remark(text: str) -> str:
    """The expected value of a check comment: its text up to the first colon outside quotes and
    brackets (``'not_exposed': outside the 20 % that enter`` expects ``'not_exposed'``)."""
    depth, quote, i = 0, "", 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in CLOSING:
            depth += 1
        elif char in CLOSING.values():
            depth -= 1
        elif char == ":" and depth == 0:
            return text[:i].rstrip()
        i += 1
    return text


def ellipsis_match(expected: str, got: str) -> bool:
    """``expected`` with each ``...`` standing for any text (possibly empty) equals ``got``."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, got, flags=re.DOTALL) is not None


def check_value(value: Any, expected: str) -> str | None:
    """None when ``value`` is what ``expected`` says, else the reason it is not."""
    try:
        literal = ast.literal_eval(expected)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if ellipsis_match(expected, repr(value)):
            return None
        return f"repr is {value!r}"
    if literal is None or isinstance(literal, bool):
        same = value is literal or (isinstance(value, np.bool_) and bool(value) is literal)
    elif isinstance(value, np.ndarray):
        same = value.shape == np.shape(literal) and bool(np.all(value == np.asarray(literal)))
    else:
        same = value == literal
        same = bool(np.all(same)) if isinstance(same, np.ndarray) else bool(same)
    return None if same else f"value is {value!r}"


def comments(code: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string
    return found


def run_block(page: Page, block: Block, namespace: dict[str, Any]) -> None:
    """Runs one block statement by statement, checking each ``# -> expected`` comment."""
    # Padding puts every statement on its line of the page, so tracebacks point into the doc.
    source = "\n" * (block.line - 1) + block.code
    filename = str(page.path)
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    checks = {
        line: split_remark(match["expected"])
        for line, text in comments(source).items()
        if (match := CHECK.match(text))
    }
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        for statement in tree.body:
            end = statement.end_lineno
            assert end is not None
            expected = checks.pop(end, None)
            below = lines[end].strip() if end < len(lines) else ""  # lines[end]: the next line
            if expected is None and below.startswith("#"):
                expected = checks.pop(end + 1, None)
            if expected is None:
                exec(compile(ast.Module([statement], []), filename, "exec"), namespace)
                continue
            where = f"{page.name}:{end}"
            if isinstance(statement, ast.Expr):
                value = eval(compile(ast.Expression(statement.value), filename, "eval"), namespace)
            elif isinstance(statement, ast.Assign | ast.AnnAssign) and isinstance(
                target := (
                    statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
                ),
                ast.Name,
            ):
                exec(compile(ast.Module([statement], []), filename, "exec"), namespace)
                value = namespace[target.id]
            else:
                raise AssertionError(f"{where}: '# ->' checks an expression or `name = ...`")
            problem = check_value(value, expected)
            if problem is not None:
                raise AssertionError(f"{where}: the comment says {expected}, but the {problem}")
    if checks:
        lines = ", ".join(f"{page.name}:{line}" for line in sorted(checks))
        raise AssertionError(f"'# ->' not at the end of a top-level statement: {lines}")
    if block.output is not None:
        got = "\n".join(line.rstrip() for line in stdout.getvalue().splitlines())
        want = "\n".join(line.rstrip() for line in block.output.splitlines())
        assert ellipsis_match(want, got), (
            f"{page.name}:{block.line}: the block printed\n{got}\nnot the output block\n{want}"
        )


# Fixtures: each makes, in the page's working directory, what the page says a reader has.
Fixture = Callable[[pytest.FixtureRequest, dict[str, Any], Path], None]
FIXTURES: dict[str, Fixture] = {}


def fixture(name: str) -> Callable[[Fixture], Fixture]:
    def register(fn: Fixture) -> Fixture:
        FIXTURES[name] = fn
        return fn

    return register


@fixture("readme-data")
def _readme_data(request: pytest.FixtureRequest, namespace: dict[str, Any], cwd: Path) -> None:
    """``experiments.yaml`` (tests/data/config/example.yaml), ``users.parquet`` (user_id, tier,
    app_version) and ``outcomes.parquet`` (arm, converted, minutes, minutes_pre, latency_ms)."""
    import pandas as pd

    shutil.copy(DATA / "config" / "example.yaml", cwd / "experiments.yaml")
    rng = np.random.default_rng(2027)
    n = 20_000
    pd.DataFrame(
        {
            "user_id": [f"user-{i}" for i in range(n)],
            "tier": rng.choice(["free", "premium", "internal"], n, p=[0.7, 0.25, 0.05]),
            "app_version": rng.choice(["2.2.9", "2.3.0", "2.10.0"], n),
        }
    ).to_parquet(cwd / "users.parquet")
    arm = rng.choice(["control", "treatment"], n)
    treated = arm == "treatment"
    minutes_pre = rng.gamma(2.0, 10.0, n)
    pd.DataFrame(
        {
            "arm": arm,
            "converted": rng.random(n) < np.where(treated, 0.11, 0.10),
            "minutes": 0.8 * minutes_pre + rng.normal(np.where(treated, 5.5, 5.0), 4.0),
            "minutes_pre": minutes_pre,
            "latency_ms": rng.normal(np.where(treated, 121.0, 120.0), 15.0),
        }
    ).to_parquet(cwd / "outcomes.parquet")


@fixture("example-config")
def _example_config(request: pytest.FixtureRequest, namespace: dict[str, Any], cwd: Path) -> None:
    """``experiments/example.yaml``: tests/data/config/example.yaml."""
    (cwd / "experiments").mkdir()
    shutil.copy(DATA / "config" / "example.yaml", cwd / "experiments" / "example.yaml")


@fixture("redis")
def _redis(request: pytest.FixtureRequest, namespace: dict[str, Any], cwd: Path) -> None:
    """``REDIS_URL``: a redis-server on 127.0.0.1 started for the test session."""
    namespace["REDIS_URL"] = request.getfixturevalue("redis_url")


PAGES = pages()


@pytest.mark.parametrize("path", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_examples(
    path: Path, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = parse_page(path)
    unknown = [name for name in page.fixtures if name not in FIXTURES]
    assert not unknown, f"{page.name}: unknown docs-test fixtures {unknown}; see {FIXTURES}"
    if page.skip is not None:
        # The page runs elsewhere: the test named must exist and name the page.
        runner = re.search(r"tests/\w+\.py", page.skip)
        assert runner and page.name in (ROOT / runner[0]).read_text(encoding="utf-8"), (
            f"{page.name}: a skipped page names the test that runs it (tests/<file>.py)"
        )
        pytest.skip(f"{page.name}: {page.skip}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for name, text in page.files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    for name in page.fixtures:
        FIXTURES[name](request, namespace, tmp_path)
    try:
        for block in page.blocks:
            run_block(page, block, namespace)
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
        for value in list(namespace.values()):
            close = getattr(value, "close", None)
            if callable(close) and type(value).__module__.startswith("trafficsplit"):
                with contextlib.suppress(Exception):
                    close()


# The checker itself: a wrong statement in a page must fail its test.


def run_page(tmp_path: Path, text: str) -> dict[str, Any]:
    page_path = tmp_path / "page.md"
    page_path.write_text(text, encoding="utf-8")
    page = parse_page(page_path)
    namespace: dict[str, Any] = {}
    for block in page.blocks:
        run_block(page, block, namespace)
    return namespace


def test_checks_pass_when_the_comments_are_true(tmp_path: Path) -> None:
    ns = run_page(
        tmp_path,
        "```python\n"
        "import numpy as np\n"
        "x = 0.1 + 0.2  # -> 0.30000000000000004: floats exactly\n"
        "{'a': (1, 2)}  # -> {'a': (1, 2)}\n"
        "np.arange(3) * 2\n"
        "# -> [0, 2, 4]\n"
        "object()  # -> <object object at ...>\n"
        "print('a: b')\n"
        "```\n\n```output\na: b\n```\n",
    )
    assert ns["x"] == 0.1 + 0.2


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1 + 1  # -> 3", "the comment says 3, but the value is 2"),
        ("'b'  # -> 'a': prose", "the comment says 'a', but the value is 'b'"),
        ("1  # -> True", "the comment says True"),
        ("np.zeros(2)  # -> [0, 0, 0]", "the comment says [0, 0, 0]"),
        ("object()  # -> <list ...>", "the repr is <object object"),
        ("for i in range(2):\n    i  # -> 0", "checks an expression"),
        ("print(\n    1  # -> 1\n)", "not at the end of a top-level statement"),
        ("import os  # -> None", "checks an expression"),
    ],
)
def test_a_wrong_comment_fails(tmp_path: Path, code: str, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        run_page(tmp_path, f"```py\nimport numpy as np\n{code}\n```\n")


def test_wrong_output_fails_and_files_are_written(tmp_path: Path) -> None:
    page = "<!-- docs-test: file data/a.txt -->\n```text\nhello\n```\n\n"
    page += "```python\nimport pathlib\nprint(pathlib.Path('data/a.txt').read_text().strip())\n"
    page += "```\n```output\nhallo\n```\n"
    (tmp_path / "page.md").write_text(page, encoding="utf-8")
    parsed = parse_page(tmp_path / "page.md")
    assert parsed.files == [("data/a.txt", "hello\n")]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("hello\n", encoding="utf-8")
    with contextlib.chdir(tmp_path), pytest.raises(AssertionError, match="the block printed"):
        run_block(parsed, parsed.blocks[0], {})


def test_every_page_is_collected() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/telemetry.md", "docs/writing-docs.md"} <= names
    assert sum(len(parse_page(p).blocks) for p in PAGES) >= 25
