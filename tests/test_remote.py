"""Remote stores against real loopback servers (moto S3, nginx): round trips, failures, clean shutdown."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from harness import results, servers, stores, verify, workloads
from harness.errors import HarnessError
from harness.matrix import Point
from harness.runner import Sweep, run_sweep

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                 reason="nginx is not installed (bootstrap installs nginx-light)")


@pytest.fixture(scope="module")
def s3():
    with servers.start_s3() as server:
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch: pytest.MonkeyPatch):
    for key, value in {**s3.env, workloads.S3_BUCKET_ENV: servers.S3_BUCKET}.items():
        monkeypatch.setenv(key, value)
    return s3


def _port_free(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def test_servers_stop_cleanly_and_free_their_ports(tmp_path: Path) -> None:
    server = servers.start_s3()
    pid, url = server.process.pid, server.url
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _port_free(url)


@needs_nginx
def test_nginx_serves_ranges_and_adds_measured_latency(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(bytes(range(256)) * 4)
    import urllib.request

    with servers.start_http(tmp_path) as http:
        request = urllib.request.Request(http.url + "/blob", headers={"Range": "bytes=10-19"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 206 and response.read() == bytes(range(10, 20))
        base = servers.measured_latency_ms(http.url + "/blob", requests=5)
    if not servers.lua_available():
        pytest.skip("nginx's Lua module is not installed: latency cannot be added")
    with servers.start_http(tmp_path, latency_ms=30) as slow:
        slowed = servers.measured_latency_ms(slow.url + "/blob", requests=5)
    assert slowed - base >= 25  # the added 30 ms is there, measured


@pytest.mark.parametrize("store", ["s3-fsspec", "s3-obstore"])
def test_s3_stores_round_trip(store: str, s3_env, tiny_adata, tmp_path: Path) -> None:
    point = Point(store=store, pipeline="fused")
    ctx = workloads.Context(point, tiny_adata, tmp_path / "p0")
    assert str(ctx.output).startswith("s3://harness/")
    with workloads.zarr_config(point, "write"):
        workloads.write_store(ctx, workloads.write_input(ctx))
    assert stores.footprint(ctx.measured_at).files > 10
    with workloads.zarr_config(point, "read"):
        verify.assert_anndata_equal(workloads.read_store(ctx), tiny_adata)
    stores.remove(ctx.measured_at)
    assert stores.footprint(ctx.measured_at).files == 0


@needs_nginx
@pytest.mark.parametrize("store", ["http-fsspec", "http-obstore"])
def test_http_stores_read_what_was_written_to_the_served_directory(store: str, tiny_adata, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with servers.start_http(tmp_path) as http:
        monkeypatch.setenv(workloads.HTTP_ROOT_ENV, str(tmp_path))
        monkeypatch.setenv(workloads.HTTP_URL_ENV, http.url)
        point = Point(store=store, pipeline="zarrs" if store.endswith("obstore") else "fused")
        ctx = workloads.Context(point, tiny_adata, tmp_path / "point-0001")
        with workloads.zarr_config(point, "write"):
            workloads.write_store(ctx, workloads.write_input(ctx))
        assert str(ctx.output).startswith(http.url)
        with workloads.zarr_config(point, "read"):
            verify.assert_anndata_equal(workloads.read_store(ctx), tiny_adata)
            lazy = workloads.open_lazy(ctx)
            verify.assert_anndata_equal(lazy[5:20].to_memory(), tiny_adata[5:20])


def test_s3_server_killed_mid_read_fails_loudly(tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = servers.start_s3()
    try:
        for key, value in {**server.env, workloads.S3_BUCKET_ENV: servers.S3_BUCKET}.items():
            monkeypatch.setenv(key, value)
        point = Point(store="s3-obstore", pipeline="fused")
        ctx = workloads.Context(point, tiny_adata, tmp_path / "p0")
        with workloads.zarr_config(point, "write"):
            workloads.write_store(ctx, workloads.write_input(ctx))
        with workloads.zarr_config(point, "read"):
            lazy = workloads.open_lazy(ctx)
            server.stop()  # the server dies between open and the data reads
            with pytest.raises(Exception) as info:
                lazy[:40].to_memory()
    finally:
        server.stop()
    assert not isinstance(info.value, AssertionError)


def test_unknown_url_scheme_is_a_clear_error() -> None:
    with pytest.raises(HarnessError, match="unsupported store URL scheme 'ftp'"):
        stores.open_store("obstore", "ftp://example.org/x.zarr")


def test_remote_sweep_starts_servers_verifies_loops_and_stops_them(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [Point(store="s3-obstore", loop="uvloop", pipeline="zarrs"), Point(store="s3-fsspec", pipeline="zarrs")]
    counts = run_sweep(Sweep(dataset=str(tiny_h5ad), points=points, workloads=["write", "read"], repeats=1, warmup=0,
                             results_dir=tmp_path, workdir=tmp_path / "work", progress=False))
    rows = {(r["point_id"], r["workload"]): r for r in results.iter_rows(results.results_path(tmp_path))}
    ok = rows[(points[0].id, "read")]
    assert ok["status"] == "ok" and ok["event_loop"].startswith("uvloop") and "zarrs" in ok["pipeline_effective"]
    assert ok["servers"]["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert rows[(points[1].id, "write")]["status"] == "unsupported" and counts["unsupported"] == 2
    assert _port_free(ok["servers"]["AWS_ENDPOINT_URL"])


def test_serve_command_stops_its_server_on_sigterm() -> None:
    import signal
    import subprocess
    import sys

    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "s3"], stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert "S3 (moto) at http://127.0.0.1:" in first
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "no server process was started"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
