"""pytest-benchmark over harness's point ids and workloads (in-process: a tracker, not the strict runner).

Run: pytest --run-bench tests/bench --benchmark-only
"""

from __future__ import annotations

import pytest

from harness.errors import UnsupportedPoint
from harness.matrix import point_by_id
from harness.measure.bench import point_ids, prepare

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("workload", ["write", "read", "lazy-rows", "lazy-random"])
@pytest.mark.parametrize("point_id", point_ids())
def test_workload(benchmark, point_id: str, workload: str) -> None:
    try:
        bench = prepare(workload, point_id)
    except UnsupportedPoint as exc:
        pytest.skip(str(exc))
    benchmark.extra_info.update(
        point_by_id(point_id).to_dict(), workload=workload, files=bench.files, bytes=bench.bytes
    )
    try:
        benchmark.pedantic(bench.run, setup=bench.reset, rounds=5, iterations=1, warmup_rounds=1)
        bench.work.verify()
    finally:
        bench.cleanup()
