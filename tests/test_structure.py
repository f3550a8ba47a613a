"""The dependency budgets of DESIGN.md, checked on the code: which folder may import what.

- runtime/ imports nothing of the harness outside itself and none of the benchmarking packages;
- analysis/ reads result files only: it imports neither measure/ nor tune/ nor the measured stack;
- measure/ does not import tune/ or the CLI.
Then the same from a fresh interpreter: importing the runtime loads none of the benchmarking side.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"
STACK = {
    "anndata",
    "zarr",
    "zarrs",
    "numcodecs",
    "obstore",
    "fsspec",
    "s3fs",
    "dask",
    "xarray",
    "h5py",
    "kvikio",
    "cupy",
    "cupyx",
    "uvloop",
}
BENCH = {
    "rich",
    "psutil",
    "s3fs",
    "moto",
    "matplotlib",
    "asv",
    "pytest",
    "pytest_benchmark",
    "hypothesis",
    "distributed",
}
MAX_LINES = 400


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, relative imports resolved."""
    package = ["harness", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [
                (node.lineno, f"{module}.{alias.name}" if node.level and not node.module else module)
                for alias in node.names
            ]
    return found


def arrows(folder: str) -> list[tuple[str, int, str]]:
    return [
        (str(path.relative_to(PACKAGE)), line, name)
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for line, name in imports(path)
    ]


def forbidden(folder: str, rule) -> list[str]:
    return [f"harness/{file}:{line} imports {name}" for file, line, name in arrows(folder) if rule(name)]


def test_the_import_walker_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    names = [name for _, name in imports(PACKAGE / "measure" / "batch.py")]
    assert "harness.analysis.results" in names and "harness.matrix" in names and "subprocess" in names


def test_runtime_imports_nothing_of_the_harness_outside_itself() -> None:
    assert (
        forbidden(
            "runtime",
            lambda n: (n.startswith("harness.") and not n.startswith("harness.runtime")) or n.split(".")[0] in BENCH,
        )
        == []
    )


def test_analysis_never_imports_measure_tune_or_the_stack() -> None:
    assert (
        forbidden(
            "analysis",
            lambda n: n.startswith(("harness.measure", "harness.tune", "harness.cli")) or n.split(".")[0] in STACK,
        )
        == []
    )


def test_measure_does_not_import_tune_or_the_cli() -> None:
    assert forbidden("measure", lambda n: n.startswith(("harness.tune", "harness.cli"))) == []


@pytest.mark.parametrize(
    "module, absent",
    [
        (
            "harness.runtime",
            BENCH | {"harness.measure", "harness.analysis", "harness.tune", "anndata", "zarr", "numpy"},
        ),
        ("harness.analysis.report", STACK | {"harness.measure", "harness.tune"}),
    ],
)
def test_importing_a_layer_loads_nothing_beyond_its_budget(module: str, absent: set[str]) -> None:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert {m for m in loaded if m in absent or m.split(".")[0] in absent} == set()


def test_no_module_is_over_the_size_budget() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > MAX_LINES} == {}
