"""Remote tuning end to end on tiny data: search concurrency and cache over the loopback nginx, verify
beside the default remote setup at two network conditions, emit a config that applies the remote part."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import harness.tune as tune_pkg
from harness.measure import network
from harness.tune.request import TuneRequest
from harness.tune.space import REMOTE_VERIFY_WORKLOADS, Constraints

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed"
)


def test_remote_tune_verifies_against_the_default_remote_setup(tiny_h5ad: Path, tmp_path: Path) -> None:
    if not network.lua_available():
        pytest.skip("added latency needs nginx's Lua module")
    space = {
        "store": ("http-obstore",),
        "loop": ("asyncio",),
        "codec": ("zstd-0",),
        "sharding": ("auto",),
        "consolidated": ("on",),
        "concurrency": ("10", "64"),
        "cache": ("none", "memory-64mb"),
    }
    request = TuneRequest(
        dataset=str(tiny_h5ad),
        objective="lazy",
        repeats=4,
        out=tmp_path / "out",
        space=space,
        progress=False,
        store="http-obstore",
        verify_networks=(network.Network(), network.Network.parse("latency=5ms")),
        constraints=Constraints(readable_by=("python",), pipelines=("fused",)),
    )
    assert request.search_network.label == "latency=5ms"  # the search sees round trips, as the user's reads will
    said: list[str] = []
    out = tune_pkg.run(request, log=said.append)
    assert any("search under the network condition latency=5ms" in line for line in said)
    record = json.loads((out / "recommended.json").read_text())
    assert record["reference"] == "anndata-default@http-obstore/asyncio"
    assert {e["network"] for e in record["verification"]} == {"none", "latency=5ms"}
    assert {e["workload"] for e in record["verification"]} == set(REMOTE_VERIFY_WORKLOADS)
    finalist = next(v["point_id"] for v in record["verdicts"] if not v["default"])
    assert all(
        e[finalist]["median"] and e[record["reference"]]["median"] and e[finalist]["requests"]
        for e in record["verification"]
    )
    slow = [e for e in record["verification"] if e["network"] == "latency=5ms" and e["workload"] == "lazy-random"][0]
    fast = [e for e in record["verification"] if e["network"] == "none" and e["workload"] == "lazy-random"][0]
    assert slow[record["reference"]]["median"] > fast[record["reference"]]["median"]  # the condition was applied
    assert record["config"]["store"] == "http-obstore" and record["config"]["concurrency"] in (10, 64)
    sys.path.insert(0, str(out))
    try:
        from io_config import recommended_config

        cfg = recommended_config()
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("io_config", None)
    assert (cfg.store, cfg.concurrency, cfg.cache.name) == (
        "http-obstore",
        record["config"]["concurrency"],
        record["config"]["cache"],
    )
    summary = (out / "summary.md").read_text()
    assert "latency=5ms" in summary and " req, " in summary and "| p |" in summary  # requests, bytes and significance
    assert all(e[finalist]["transferred"] > 0 for e in record["verification"])
