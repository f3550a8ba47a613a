"""Remote-tuning knobs: zarr's concurrency and a read cache (CacheStore) with a size budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.analysis import results
from harness.errors import HarnessError
from harness.matrix import Point, invalid_reason, parse_axes, point_by_id
from harness.measure.runner import Sweep, run_sweep
from harness.runtime import IOConfig, cache


@pytest.mark.parametrize(
    "bad, match", [("memory-0mb", "must be positive"), ("disk--5gb", "must be positive"), ("lru-1gb", "not understood")]
)
def test_bad_cache_budgets_are_clear_errors(bad: str, match: str) -> None:
    with pytest.raises(HarnessError, match=match):
        IOConfig(cache=bad)


@pytest.mark.parametrize("bad", [0, -3, "many"])
def test_bad_concurrency_is_a_clear_error(bad) -> None:
    with pytest.raises(HarnessError, match="at least 1"):
        IOConfig(concurrency=bad)
    with pytest.raises(HarnessError, match="at least 1"):
        parse_axes([f"concurrency={bad}"])


def test_unwritable_disk_cache_directory_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(blocker / "cache"))
    with pytest.raises(HarnessError, match="not writable"):
        IOConfig(cache="disk-1gb").open_store(tmp_path, read_only=True)


def test_new_axes_keep_old_ids_and_round_trip() -> None:
    assert Point.of(pipeline="zarrs").id == "local/asyncio/zarrs/zstd-0/auto/cons-on"
    point = Point.of(store="s3-obstore", concurrency="64", cache="memory-256mb")
    assert point.id.endswith("/cons-on/conc-64/cache-memory-256mb") and point_by_id(point.id) == point
    assert "remote stores" in invalid_reason(Point.of(cache="memory-1gb"))
    from harness.matrix import static_unsupported_reason

    assert "wrapped store" in static_unsupported_reason(
        Point.of(store="s3-obstore", pipeline="zarrs", cache="memory-1gb")
    )


@pytest.mark.parametrize("spec", ["memory-64mb", "disk-64mb"])
def test_cache_never_serves_a_store_rewritten_between_opens(
    spec: str, tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    cfg = IOConfig(store="obstore", cache=spec)
    target = tmp_path / "s.zarr"
    cfg.write(tiny_adata, target)
    first = cfg.read_lazy(target).obs["total_counts"].to_numpy().copy()
    changed = tiny_adata.copy()
    changed.obs["total_counts"] = changed.obs["total_counts"] + 1
    cfg.write(changed, target)  # rewritten in place between two opens
    again = cfg.read_lazy(target).obs["total_counts"].to_numpy()
    assert np.array_equal(again, first + 1)


@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed"
)
def test_a_memory_cache_saves_repeated_requests(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [
        Point.of(store="http-obstore", pipeline="fused", sharding="rows-16x2"),
        Point.of(store="http-obstore", pipeline="fused", sharding="rows-16x2", cache="memory-64mb", concurrency="32"),
    ]
    run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=points,
            workloads=["lazy-random"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
        )
    )
    rows = {r["point_id"]: r for r in results.iter_rows(results.results_file(tmp_path))}
    plain, cached = (rows[p.id]["requests"] for p in points)
    assert all(rows[p.id]["status"] == "ok" for p in points)
    # concurrent misses of one key are coalesced: what is left are re-reads of evicted or uncached ranges
    assert plain["repeated"][0] > 0 and cached["repeated"][0] < plain["repeated"][0] / 2
    assert cached["requests"][0] < plain["requests"][0]


def test_concurrent_misses_of_one_key_reach_the_store_once(tmp_path: Path) -> None:
    import asyncio

    from zarr.abc.store import RangeByteRequest
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import LocalStore, WrapperStore

    class Counting(WrapperStore):
        calls: list[tuple[str, object]] = []

        async def get(self, key, prototype, byte_range=None):
            self.calls.append((key, byte_range))
            await asyncio.sleep(0.05)  # a round trip: the other requests arrive while this one is out
            return await super().get(key, prototype, byte_range)

    (tmp_path / "k").write_bytes(bytes(range(100)))
    store = cache.wrap(Counting(LocalStore(tmp_path, read_only=True)), cache.parse_cache("memory-1mb"))
    proto = default_buffer_prototype()

    async def many():
        requests = [("k", None)] * 8 + [("k", RangeByteRequest(10, 20))] * 8 + [("missing", None)] * 3
        return await asyncio.gather(*(store.get(k, proto, r) for k, r in requests))

    got = asyncio.run(many())
    assert sorted(Counting.calls, key=repr) == sorted(
        [("k", None), ("k", RangeByteRequest(10, 20)), ("missing", None)], key=repr
    )
    assert all(g.to_bytes() == bytes(range(100)) for g in got[:8])
    assert all(g.to_bytes() == bytes(range(10, 20)) for g in got[8:16]) and got[16:] == [None] * 3
    asyncio.run(many())  # a second wave: all hits (missing keys are not cached by zarr: fetched again)
    assert len(Counting.calls) == 3 + 1
