"""Shared fixtures: a tiny synthetic dataset (kilobytes) generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure import datasets

TINY = datasets.SyntheticSize(cells=80, genes=300, median_genes=30)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-bench", action="store_true", help="run the pytest-benchmark suite in tests/bench")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: a benchmark (pytest-benchmark); skipped unless --run-bench")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-bench"):
        return
    skip = pytest.mark.skip(reason="benchmark: opt in with --run-bench")
    for item in items:
        if item.get_closest_marker("bench"):  # not `in item.keywords`: that holds the path's folder names too
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_h5ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return datasets.generate(tmp_path_factory.mktemp("data") / "tiny.h5ad", TINY, chunk_cells=50)


@pytest.fixture(scope="session")
def tiny_adata(tiny_h5ad: Path):
    return datasets.load(tiny_h5ad)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's dataset cache from tests."""
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "harness-data"))
