"""The example notebooks of docs/examples: strip their outputs, or run them in place.

    .venv/bin/python scripts/notebooks.py            # strip outputs and execution counts
    .venv/bin/python scripts/notebooks.py --run      # execute each in place, outputs kept
    .venv/bin/python scripts/notebooks.py --check    # fail if a notebook is not stripped

The notebooks are committed without outputs; ``--run`` fills them in for reading locally
(run the plain command again before committing). A run executes every cell in a fresh
kernel of this interpreter, in a temporary working directory (the files a notebook writes
stay out of the repository), and stops at the first cell that fails.
``tests/test_notebooks.py`` executes them the same way and checks what they show.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
TIMEOUT = 120  # seconds per cell

# Notebook metadata kept when stripping; the rest (widgets, execution timings, the
# interpreter's version) changes with every run.
_KEPT_METADATA = ("kernelspec",)
_KERNEL = "python3"


def notebooks(folder: Path = EXAMPLES) -> list[Path]:
    """The notebooks of ``folder``, by name."""
    return sorted(folder.glob("*.ipynb"))


def strip(nb: Any) -> Any:
    """``nb`` (an ``nbformat`` notebook, changed in place and returned) without outputs,
    execution counts or run-specific metadata."""
    nb.metadata = {k: nb.metadata[k] for k in _KEPT_METADATA if k in nb.metadata}
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def text_of(nb: Any) -> str:
    """The file text of ``nb`` as committed: nbformat's JSON with a final newline."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def kernel_manager(folder: Path) -> Any:
    """A kernel manager for a ``python3`` kernel of this interpreter (whatever other
    ``python3`` kernels Jupyter's paths hold), its kernelspec written under ``folder``."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    install(kernel_name=_KERNEL, prefix=str(folder))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "share" / "jupyter" / "kernels")])
    return KernelManager(kernel_name=_KERNEL, kernel_spec_manager=specs)


def execute(nb: Any, workdir: Path, timeout: int = TIMEOUT) -> Any:
    """Runs every cell of ``nb`` (changed in place and returned, with its outputs) in a fresh
    kernel of this interpreter, in ``workdir``. Raises ``nbclient``'s ``CellExecutionError``
    at the first cell that fails."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="trafficsplit-kernel-") as spec:
        client = NotebookClient(
            nb,
            km=kernel_manager(Path(spec)),
            timeout=timeout,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute(cwd=str(workdir))
    return nb


def _read(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--run", action="store_true", help="execute in place, keeping outputs")
    mode.add_argument("--check", action="store_true", help="fail unless every one is stripped")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: docs/examples)")
    args = parser.parse_args(argv)
    paths = args.paths or notebooks()
    failed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        stripped = text_of(strip(_read(path)))
        if args.check:
            if text != stripped:
                failed.append(path)
                print(f"{path}: has outputs or run metadata; run scripts/notebooks.py")
            continue
        if args.run:
            with tempfile.TemporaryDirectory(prefix="trafficsplit-notebook-") as work:
                nb = execute(_read(path), Path(work))
            path.write_text(text_of(nb), encoding="utf-8")
            print(f"{path}: ran every cell")
        elif text != stripped:
            path.write_text(stripped, encoding="utf-8")
            print(f"{path}: stripped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
