"""The distributions users install: the portable wheel that scripts/build-wheel.sh makes and
the sdist, each installed into a fresh virtual environment that gets nothing but the declared
dependencies from the package index, then put to work by tests/smoke_serving.py.

Builds are cached under build/dist-tests/ by a hash of the sources, so a second run only
installs and checks (docs/install.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

import smoke_serving

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "dist-tests"
DATA = ROOT / "tests" / "data"
SMOKE = [
    str(ROOT / "tests" / "smoke_serving.py"),
    "--installed",
    "--vectors",
    str(DATA / "assignment_vectors.tsv"),
]
CONFIG = DATA / "config" / "example.yaml"
INVALID = DATA / "config" / "invalid.yaml"
# What goes into a distribution; any change makes the cached builds stale.
SOURCES = ("CMakeLists.txt", "pyproject.toml", "LICENSE", "README.md", "scripts", "cpp", "python")
HEAVY_BUILD = 1800  # seconds a cold build may take on two busy cores


def _source_hash() -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        top = ROOT / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for p in paths:
            if "__pycache__" in p.parts or p.suffix in (".so", ".pyc"):
                continue
            h.update(p.relative_to(ROOT).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


SOURCE_HASH = _source_hash()


def _clean_env() -> dict[str, str]:
    """The environment of a user's shell: no trace of the development virtual environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    return env


def _run(args: list, *, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def _cached(kind: str, make) -> Path:
    """``build/dist-tests/<kind>-<source hash>``, made by ``make(folder)`` unless it exists;
    folders of older sources are removed."""
    folder = CACHE / f"{kind}-{SOURCE_HASH}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second test run waits, then finds it made
        if not (folder / "complete").exists():
            for old in CACHE.iterdir():
                if re.fullmatch(rf"{kind}-[0-9a-f]{{16}}", old.name):
                    shutil.rmtree(old, ignore_errors=True)
            make(folder)
            (folder / "complete").touch()
    return folder


def _new_venv(where: Path) -> Path:
    # The interpreter this suite runs on, without the packages of its environment.
    _run([sys.executable, "-m", "venv", where], env=_clean_env())
    return where / "bin" / "python"


@pytest.fixture(scope="module")
def wheel() -> Path:
    def make(folder: Path) -> None:
        _run(
            [ROOT / "scripts" / "build-wheel.sh", "--no-setup", folder],
            timeout=HEAVY_BUILD,
        )

    (found,) = _cached("wheel", make).glob("*.whl")
    return found


@pytest.fixture(scope="module")
def sdist() -> Path:
    def make(folder: Path) -> None:
        _run(
            [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", folder],
            cwd=ROOT,
        )

    (found,) = _cached("sdist", make).glob("*.tar.gz")
    return found


def _policies() -> dict[str, dict]:
    """auditwheel's own manylinux policies, by name."""
    text = (files("auditwheel.policy") / "manylinux-policy.json").read_text(encoding="utf-8")
    return {p["name"]: p for p in json.loads(text)}


def _dynamic(data: bytes) -> tuple[list[str], list[str]]:
    """The NEEDED and RUNPATH/RPATH entries of an ELF file."""
    needed: list[str] = []
    paths: list[str] = []
    for section in ELFFile(io.BytesIO(data)).iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(tag.needed)
                elif tag.entry.d_tag == "DT_RUNPATH":
                    paths.extend(tag.runpath.split(":"))
                elif tag.entry.d_tag == "DT_RPATH":
                    paths.extend(tag.rpath.split(":"))
    return needed, paths


def _wheel_tag(wheel: Path) -> str:
    match = re.fullmatch(r"trafficsplit-[^-]+-cp\d+-cp\d+-(.+)\.whl", wheel.name)
    assert match, wheel.name
    return match.group(1)


def test_wheel_is_manylinux(wheel):
    shown = _run([Path(sys.executable).with_name("auditwheel"), "show", wheel]).stdout
    shown = " ".join(shown.split())
    match = re.search(
        r'consistent with the following platform tag: "(manylinux_2_(\d+)_x86_64)"', shown
    )
    assert match, shown
    assert _wheel_tag(wheel) == match.group(1)
    # Built here, so it needs at most this machine's glibc.
    host = os.confstr("CS_GNU_LIBC_VERSION")
    assert host is not None
    assert int(match.group(2)) <= int(host.split()[1].split(".")[1])


def test_wheel_needs_only_allowed_libraries(wheel):
    tag = _wheel_tag(wheel)
    allowed = set(_policies()[tag.removesuffix("_x86_64")]["lib_whitelist"])
    with zipfile.ZipFile(wheel) as z:
        elves = {n: z.read(n) for n in z.namelist() if re.search(r"\.so(\.|$)", n)}
    bundled = {Path(n).name for n in elves if n.startswith("trafficsplit.libs/")}
    (extension,) = [n for n in elves if n.startswith("trafficsplit/_core.")]
    assert any(b.startswith("libre2") for b in bundled), bundled
    for name, data in elves.items():
        needed, _ = _dynamic(data)
        # The dynamic loader comes with every glibc; auditwheel's policies never list it.
        outside = [
            lib
            for lib in needed
            if lib not in allowed and lib not in bundled and not lib.startswith("ld-linux")
        ]
        assert outside == [], f"{name} needs {outside}, neither bundled nor allowed by {tag}"
    needed, paths = _dynamic(elves[extension])
    assert any(lib in bundled for lib in needed), needed
    assert "$ORIGIN/../trafficsplit.libs" in paths, paths


def test_wheel_holds_the_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (license_file,) = [
            n for n in names if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n)
        ]
        assert z.read(license_file) == (ROOT / "LICENSE").read_bytes()
        (metadata,) = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        headers = z.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in headers.splitlines()
    assert "License-File: LICENSE" in headers.splitlines()


def test_wheel_serves_in_a_fresh_venv(wheel, tmp_path):
    python = _new_venv(tmp_path / "venv")
    _run([python, "-m", "pip", "install", "-q", wheel], env=_clean_env())
    listed = json.loads(_run([python, "-m", "pip", "list", "--format=json"]).stdout)
    names = {d["name"].lower() for d in listed} - {"pip", "setuptools", "wheel"}
    assert names == {"trafficsplit", "numpy", "pyyaml"}

    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps(smoke_serving.serving_results(CONFIG)), encoding="utf-8")
    done = _run(
        [
            python,
            *SMOKE,
            "--config",
            CONFIG,
            "--invalid",
            INVALID,
            "--expected",
            expected,
            "--workdir",
            tmp_path / "work",
        ],
        cwd=tmp_path,
        env=_clean_env(),
    )
    assert "serving results equal the other environment's" in done.stdout

    # The bundled libre2 is the one loaded, not a copy that happens to be on this machine.
    platlib = "import sysconfig; print(sysconfig.get_path('platlib'))"
    site = Path(_run([python, "-c", platlib]).stdout.strip())
    (extension,) = (site / "trafficsplit").glob("_core.*.so")
    ldd = _run(["ldd", extension]).stdout
    assert "not found" not in ldd, ldd
    (re2,) = [line.split("=>")[1].split()[0] for line in ldd.splitlines() if "libre2" in line]
    assert Path(re2).resolve().parent == (site / "trafficsplit.libs").resolve(), ldd


def test_sdist_holds_what_the_build_needs(sdist):
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
        top = next(m.name.split("/", 1)[0] for m in tar.getmembers())
        license_text = tar.extractfile(f"{top}/LICENSE").read()
    assert license_text == (ROOT / "LICENSE").read_bytes()
    for needed in (
        "CMakeLists.txt",
        "pyproject.toml",
        "README.md",
        "PKG-INFO",
        "python/trafficsplit/py.typed",
        "python/trafficsplit/config.schema.json",
    ):
        assert needed in members, needed
    # What git tracks and the working tree still has (the sdist is made from the tree).
    tracked = [
        name
        for name in _run(["git", "ls-files", "cpp", "python"], cwd=ROOT).stdout.split()
        if (ROOT / name).is_file()
    ]
    assert tracked and [t for t in tracked if t not in members] == []
    junk = [
        m
        for m in members
        if re.match(r"(build|dist|\.venv|\.stamps|\.hypothesis)/", m) or m.endswith((".so", ".pyc"))
    ]
    assert junk == []


def test_sdist_builds_and_installs(sdist):
    """pip builds the sdist with the compiler and the Debian -dev packages of this machine."""

    def make(folder: Path) -> None:
        python = _new_venv(folder / "venv")
        _run([python, "-m", "pip", "install", "-q", sdist], env=_clean_env(), timeout=HEAVY_BUILD)

    python = _cached("sdist-install", make) / "venv" / "bin" / "python"
    done = _run([python, *SMOKE, "--vectors-only"], cwd=CACHE, env=_clean_env())
    assert re.search(r"golden vectors: \d{4,} rows match", done.stdout), done.stdout


@pytest.mark.parametrize(
    ("defines", "message"),
    [
        (
            ["-DTRAFFICSPLIT_BUILD_PYTHON=OFF", "-DCMAKE_IGNORE_PATH={xxhash}"],
            "install the Debian package libxxhash-dev",
        ),
        (
            ["-DTRAFFICSPLIT_BUILD_PYTHON=OFF", "-DTRAFFICSPLIT_STATIC_RE2=ON"],
            "libre2.a cannot be linked into a shared library: it is not position-independent code",
        ),
        (["-DCMAKE_DISABLE_FIND_PACKAGE_Python=ON"], "install the Debian package python3-dev"),
        (["-DCMAKE_DISABLE_FIND_PACKAGE_pybind11=ON"], "pip install 'pybind11>=2.13'"),
    ],
    ids=["xxhash", "static-re2", "python-headers", "pybind11"],
)
def test_cmake_names_what_is_missing(defines, message, tmp_path):
    xxhash = next(d for d in ("/usr/include", "/usr/local/include") if Path(d, "xxhash.h").exists())
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            bin_dir / "cmake",
            "-S",
            ROOT,
            "-B",
            tmp_path,
            "-G",
            "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={bin_dir / 'ninja'}",
            f"-DPython_EXECUTABLE={sys.executable}",
            *(d.format(xxhash=xxhash) for d in defines),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert message in " ".join(done.stderr.split()), done.stderr
