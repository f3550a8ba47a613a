"""pytest-benchmark front end: opt-in (`pytest --run-bench tests/bench`), same points as asv and the runner."""

from __future__ import annotations


def pytest_benchmark_update_machine_info(config, machine_info):
    """Provenance of the stack under test, next to pytest-benchmark's own machine info."""
    from pathlib import Path

    from harness.measure import provenance

    machine_info["harness"] = provenance.collect(Path.cwd())
