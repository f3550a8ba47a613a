"""Remote stores against real loopback servers (moto S3, nginx): round trips, failures, clean shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from aiohttp import ClientResponseError
from obstore.exceptions import BaseError

from harness.analysis import results
from harness.errors import HarnessError
from harness.matrix import Point
from harness.measure import context, network, requests, servers, storefiles, timing, verify, workloads
from harness.measure.runner import Sweep, run_sweep
from harness.runtime import Store, consolidated, stores

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed (bootstrap installs nginx-light)",
)


@pytest.fixture(scope="module")
def s3():
    with servers.start_s3() as server:
        yield server


@pytest.fixture
def s3_env(s3, monkeypatch: pytest.MonkeyPatch):
    for key, value in {**s3.env, context.S3_BUCKET_ENV: servers.S3_BUCKET}.items():
        monkeypatch.setenv(key, value)
    return s3


def _port_free(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


@pytest.mark.parametrize("engine", ["s3rver", "moto"])
def test_servers_stop_cleanly_and_free_their_ports(engine: str, tmp_path: Path) -> None:
    if engine == "s3rver" and servers.s3rver_path() is None:
        pytest.skip("s3rver needs Node.js and npm")
    server = servers.start_s3(engine=engine)
    assert server.engine == engine
    pids = [server.process.pid, *(c.process.pid for c in server.children)]
    urls = [server.url, *(c.url for c in server.children)]
    server.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert all(_port_free(url) for url in urls)


@needs_nginx
def test_nginx_serves_ranges_and_adds_measured_latency(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(bytes(range(256)) * 4)
    import urllib.request

    with servers.start_http(tmp_path) as http:
        request = urllib.request.Request(http.url + "/blob", headers={"Range": "bytes=10-19"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 206 and response.read() == bytes(range(10, 20))
        base = network.measured_latency_ms(http.url + "/blob", requests=5)
    if not network.lua_available():
        pytest.skip("nginx's Lua module is not installed: latency cannot be added")
    with servers.start_http(tmp_path, latency_ms=30) as slow:
        slowed = network.measured_latency_ms(slow.url + "/blob", requests=5)
    assert slowed - base >= 25  # the added 30 ms is there, measured


@pytest.mark.parametrize("store", ["s3-fsspec", "s3-obstore"])
def test_s3_stores_round_trip(store: str, s3_env, tiny_adata, tmp_path: Path) -> None:
    point = Point.of(store=store, pipeline="fused")
    ctx = context.Context(point, tiny_adata, tmp_path / "p0")
    assert str(ctx.output).startswith("s3://harness/")
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    assert storefiles.footprint(ctx.measured_at).files > 10
    with context.zarr_config(point, "read"):
        verify.assert_anndata_equal(context.read_store(ctx), tiny_adata)
    storefiles.remove(ctx.measured_at)
    assert storefiles.footprint(ctx.measured_at).files == 0


@needs_nginx
@pytest.mark.parametrize("store", ["http-fsspec", "http-obstore"])
def test_http_stores_read_what_was_written_to_the_served_directory(
    store: str, tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with servers.start_http(tmp_path) as http:
        monkeypatch.setenv(context.HTTP_ROOT_ENV, str(tmp_path))
        monkeypatch.setenv(context.HTTP_URL_ENV, http.url)
        point = Point.of(store=store, pipeline="zarrs" if store.endswith("obstore") else "fused")
        ctx = context.Context(point, tiny_adata, tmp_path / "point-0001")
        with context.zarr_config(point, "write"):
            context.write_store(ctx, context.write_input(ctx))
        assert str(ctx.output).startswith(http.url)
        with context.zarr_config(point, "read"):
            verify.assert_anndata_equal(context.read_store(ctx), tiny_adata)
            lazy = context.open_lazy(ctx)
            verify.assert_anndata_equal(lazy[5:20].to_memory(), tiny_adata[5:20])


def test_s3_server_killed_mid_read_fails_loudly(tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = servers.start_s3()
    try:
        for key, value in {**server.env, context.S3_BUCKET_ENV: servers.S3_BUCKET}.items():
            monkeypatch.setenv(key, value)
        point = Point.of(store="s3-obstore", pipeline="fused")
        ctx = context.Context(point, tiny_adata, tmp_path / "p0")
        with context.zarr_config(point, "write"):
            context.write_store(ctx, context.write_input(ctx))
        with context.zarr_config(point, "read"):
            lazy = context.open_lazy(ctx)
            server.stop()  # the server dies between open and the data reads
            with pytest.raises(BaseError, match="error"):  # obstore's own error after its retries, not a fill value
                lazy[:40].to_memory()
    finally:
        server.stop()


def test_unknown_url_scheme_is_a_clear_error() -> None:
    with pytest.raises(HarnessError, match="unsupported store URL scheme 'ftp'"):
        stores.open_store("obstore", "ftp://example.org/x.zarr")


def test_remote_sweep_starts_servers_verifies_loops_and_stops_them(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [
        Point.of(store="s3-obstore", loop="uvloop", pipeline="zarrs"),
        Point.of(store="s3-fsspec", pipeline="zarrs"),
    ]
    counts = run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=points,
            workloads=["write", "read"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
        )
    )
    rows = {(r["point_id"], r["workload"]): r for r in results.iter_rows(results.results_file(tmp_path))}
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
    assert "behind nginx) at http://127.0.0.1:" in first
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "no server process was started"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


def test_network_latency_is_applied_measured_and_requests_are_counted(tiny_h5ad: Path, tmp_path: Path) -> None:
    if not network.lua_available():
        pytest.skip("nginx's Lua module is not installed: latency cannot be added")
    points = [Point.of(store="s3-obstore", pipeline="fused"), Point.of(store="http-fsspec", pipeline="fused")]
    run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=points,
            workloads=["lazy-rows"],
            repeats=2,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
            network="latency=15ms",
        )
    )
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    for row in rows:
        protocol = Store(row["point"]["store"]).protocol
        assert row["network"]["condition"] == "latency=15ms"
        assert row["network"]["measured_rtt_ms"][protocol] >= 14  # the condition is measured, not assumed
        counted = row["requests"]
        assert len(counted["requests"]) == 2 and min(counted["requests"]) > 3 and min(counted["GET"]) > 0
        assert min(counted["bytes"]) > 1000
        assert min(row["values"]) > 3 * 0.015  # several sequential round trips at 15 ms each
    secrets = ("AWS_SECRET_ACCESS_KEY", servers.S3_SECRET, "S3RVER")  # s3rver's key pair is S3RVER/S3RVER
    assert not any(secret in json.dumps(r) for r in rows for secret in secrets)
    df = results.load(tmp_path)
    assert set(df["point_id"]) == {f"{p.id} (latency=15ms)" for p in points}


def test_request_counter_reads_only_new_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("GET\t/a\t-\t200\t10\t0.001\n")
    counter = requests.RequestCounter([log])
    counter.start()
    with open(log, "a") as fh:
        fh.write("GET\t/b\tbytes=0-9\t206\t10\t0.001\nGET\t/b\tbytes=0-9\t206\t10\t0.001\nHEAD\t/c\t-\t404\t0\t0.001\n")
    assert counter.stop() == {"requests": 3, "bytes": 20, "repeated": 1, "errors": 0, "GET": 2, "HEAD": 1}


def test_network_spec_is_parsed_or_rejected_clearly() -> None:
    net = network.Network.parse("latency=20ms,rate=1gbit")
    assert (net.latency_ms, net.rate_bytes_per_s, net.label) == (20.0, 125_000_000, "latency=20ms,rate=1000mbit")
    assert network.Network.parse("latency=0.5s").latency_ms == 500
    for bad, match in (
        ("jitter=3ms", "unknown; valid"),
        ("latency=fast", "number with a unit"),
        ("rate=3furlongs", "unit"),
    ):
        with pytest.raises(HarnessError, match=match):
            network.Network.parse(bad)


def test_user_s3_url_replaces_the_loopback_server(
    tiny_h5ad: Path, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env.items():  # the "user's" endpoint and credentials, from the environment
        monkeypatch.setenv(key, value)
    point = Point.of(store="s3-obstore", pipeline="fused")
    counts = run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=[point],
            workloads=["write", "lazy-rows"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
            store_url=f"s3://{servers.S3_BUCKET}/user-prefix",
        )
    )
    assert counts["ok"] == 2
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    assert rows[0]["servers"][context.S3_PREFIX_ENV] == "user-prefix" and "AWS_ENDPOINT_URL" not in rows[0]["servers"]
    assert "requests" not in rows[0]  # no access log of a server we did not start
    with pytest.raises(HarnessError, match="not to --store URLs"):
        run_sweep(
            Sweep(
                dataset=str(tiny_h5ad),
                points=[point],
                workloads=["write"],
                results_dir=tmp_path / "b",
                progress=False,
                network="latency=5ms",
                store_url="s3://harness/x",
            )
        )
    with pytest.raises(HarnessError, match="not used by any point"):
        run_sweep(
            Sweep(
                dataset=str(tiny_h5ad),
                points=[Point.of()],
                workloads=["write"],
                results_dir=tmp_path / "c",
                progress=False,
                store_url="s3://harness/x",
            )
        )


def test_remote_baselines_are_measured_on_the_same_store() -> None:
    from harness import matrix

    points = [Point.of(store="s3-obstore", loop="uvloop"), Point.of(store="local")]
    ids = {p.id for p in matrix.baselines_for(["anndata-default", "h5ad"], points)}
    assert ids == {"anndata-default@s3-obstore/uvloop", "anndata-default", "h5ad"}
    assert matrix.point_by_id("anndata-default@s3-obstore/uvloop") == Point.of(
        store="s3-obstore", loop="uvloop", pipeline="fused", baseline="anndata-default"
    )


def test_check_store_finds_stale_consolidated_metadata_on_s3(s3_env, tiny_adata, tmp_path: Path) -> None:
    from obstore import delete
    from obstore.store import from_url

    from harness import matrix

    point = matrix.baseline_point("anndata-default").with_axes(store="s3-obstore")
    ctx = context.Context(point, tiny_adata, tmp_path / "p0")
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    url = str(ctx.output)
    assert not consolidated.check(url).stale
    key = url.removeprefix(f"s3://{servers.S3_BUCKET}/") + "/obs/total_counts/zarr.json"
    delete(from_url(f"s3://{servers.S3_BUCKET}"), [key])  # the column's node is gone, the consolidated copy keeps it
    found = consolidated.check(url)
    assert found.missing == ["obs/total_counts"] and "STALE" in found.message()


@pytest.mark.parametrize("engine", ["s3rver", "moto"])
def test_s3_server_honours_conditional_create_suffix_ranges_and_paged_listings(engine: str) -> None:
    """zarr relies on the first two: an overwrite here once lost anndata's sparse `shape`, and a wrong
    suffix range broke every shard index read. A listing past one page once failed every footprint of a
    zarr v2 store (1,167 files) with a 500 (jamhall/s3rver #814)."""
    import obstore
    from obstore.exceptions import AlreadyExistsError
    from obstore.store import S3Store

    if engine == "s3rver" and (servers.s3rver_path() is None or not network.lua_available()):
        pytest.skip("s3rver needs Node.js, npm and nginx's Lua module")
    with servers.start_s3(engine=engine) as server:
        env = server.env
        store = S3Store(
            servers.S3_BUCKET,
            endpoint=server.url,
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region=servers.S3_REGION,
            client_options={"allow_http": True},
            virtual_hosted_style_request=False,
        )
        obstore.put(store, "g/zarr.json", b"first", mode="create")
        with pytest.raises(AlreadyExistsError):
            obstore.put(store, "g/zarr.json", b"second", mode="create")
        assert bytes(obstore.get(store, "g/zarr.json").bytes()) == b"first"
        blob = bytes(range(256)) * 64
        obstore.put(store, "shard", blob)
        for n in (100, 20_000):  # a shard index read, and a suffix longer than the object
            got = bytes(obstore.get(store, "shard", options={"range": {"suffix": n}}).bytes())
            assert got == blob[-n:]
        # a listing of more than one page (1,000 keys): s3rver's continuation token needs OpenSSL's DES
        keys = {f"many/{i:04d}" for i in range(1001)}
        asyncio.run(_put_all(store, keys))
        assert {m["path"] for batch in obstore.list(store, prefix="many/") for m in batch} == keys


async def _put_all(store, keys) -> None:
    import obstore

    for first in range(0, len(keys), 100):
        await asyncio.gather(*(obstore.put_async(store, k, b"x") for k in sorted(keys)[first : first + 100]))


@pytest.mark.parametrize("store", ["s3-fsspec", "s3-obstore"])
def test_async_stream_repeats_on_s3(store: str, s3_env, tiny_adata, tmp_path: Path) -> None:
    """Each repeat runs zarr's async API on a new loop: a cached s3fs session of a closed loop once broke it."""

    point = Point.of(store=store, pipeline="fused")
    ctx = context.Context(point, tiny_adata, tmp_path / "p0")
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    work = workloads.REGISTRY["stream-async"](ctx)
    with work.config():
        stats = timing.measure(work, repeats=2, warmup=0)
    work.verify()
    assert len(stats["values"]) == 2 and all(v > 0 for v in stats["values"])


def test_user_store_problems_are_one_line_errors(
    tiny_h5ad: Path, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sweep(url: str) -> Sweep:
        return Sweep(
            dataset=str(tiny_h5ad),
            points=[Point.of(store="s3-obstore", pipeline="fused")],
            workloads=["write"],
            results_dir=tmp_path,
            progress=False,
            store_url=url,
        )

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(HarnessError, match="cannot use s3://no-such-bucket/x: .*bucket name"):
        run_sweep(sweep("s3://no-such-bucket/x"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(HarnessError, match="cannot use s3://harness/x: .*credentials"):  # no credentials anywhere
        run_sweep(sweep("s3://harness/x"))
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{servers.free_port()}")  # nothing listens there
    with pytest.raises(HarnessError, match="cannot use s3://harness/x: .*(sending request|onnect)"):
        run_sweep(sweep("s3://harness/x"))
    assert not results.results_file(tmp_path).exists() or not list(results.iter_rows(results.results_file(tmp_path)))


def test_unknown_store_url_scheme_on_the_command_line(capsys: pytest.CaptureFixture) -> None:
    from harness.cli import main

    assert (
        main(["run", "--dataset", "tiny", "--axis", "store=s3-obstore", "--store", "ftp://host/x", "--no-progress"])
        == 2
    )
    assert "use s3://bucket/prefix" in capsys.readouterr().err


@needs_nginx
@pytest.mark.parametrize("store", ["http-fsspec", "http-obstore"])
def test_http_errors_fail_reads_and_missing_chunks_fail_verification(
    store: str, tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.errors import VerificationError

    point = Point.of(store=store, pipeline="fused", sharding="rows-16x2")
    ctx = context.Context(point, tiny_adata, tmp_path / "p0")
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    monkeypatch.setenv(context.HTTP_ROOT_ENV, str(tmp_path))
    with servers.start_http(tmp_path, faults={"/X/data/": 500}) as http:  # the server errors on X's values
        monkeypatch.setenv(context.HTTP_URL_ENV, http.url)
        expected = BaseError if store.endswith("obstore") else ClientResponseError  # the client's own HTTP error
        with context.zarr_config(point, "read"), pytest.raises(expected, match="500|[Ee]rror performing GET"):
            context.read_store(ctx)
    shard = sorted((ctx.on_disk / "X" / "data" / "c").iterdir())[0]
    shard.unlink()  # a 404: zarr reads a missing chunk as fill values, so only verification can tell
    with servers.start_http(tmp_path) as http:
        monkeypatch.setenv(context.HTTP_URL_ENV, http.url)
        work = workloads.Read(ctx)
        with work.config():
            work.run()
        with pytest.raises(VerificationError):
            work.verify()


def test_server_killed_mid_read_is_a_recorded_failure_and_the_batch_goes_on(tiny_h5ad: Path, tmp_path: Path) -> None:
    """The S3 server dies at the first data GET of the reads: the rows say failed with the cause."""
    import threading
    import time

    from harness.measure.batch import run_batch

    server = servers.start_s3()
    killed, done = threading.Event(), threading.Event()

    def kill_at_first_data_read() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed.is_set() and not done.is_set():
            text = server.access_log.read_text(errors="replace") if server.access_log.exists() else ""
            if any(line.startswith("GET") and "/X/data/" in line for line in text.splitlines()):
                for child in server.children:
                    child.stop()  # the S3 server itself; nginx answers 502 from now on
                killed.set()
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_at_first_data_read, daemon=True)
    try:
        env = {**server.env, context.S3_BUCKET_ENV: servers.S3_BUCKET, requests.ACCESS_LOGS_ENV: str(server.access_log)}
        watcher.start()
        point = Point.of(store="s3-obstore", pipeline="fused")
        got = {
            k: r.to_json()
            for k, r in run_batch(
                [point],
                tiny_h5ad,
                ["read", "lazy-rows"],
                repeats=2,
                warmup=0,
                workdir=tmp_path / "w",
                timeout=300,
                env=env,
            ).items()
        }
    finally:
        done.set()
        server.stop()
    assert killed.is_set(), "the server was never killed: no data GET seen"
    rows = [got[(point.id, w)] for w in ("read", "lazy-rows")]
    assert all(r["status"] == "failed" for r in rows), rows
    assert all(r["error"] for r in rows)


@needs_nginx
def test_http_without_consolidated_metadata_is_unsupported_with_the_reason(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [Point.of(store="http-obstore", pipeline="fused", consolidated="off")]
    run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=points,
            workloads=["lazy-open", "stream-async"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
        )
    )
    rows = {r["workload"]: r for r in results.iter_rows(results.results_file(tmp_path))}
    assert rows["lazy-open"]["status"] == "unsupported" and "needs consolidated metadata" in rows["lazy-open"]["error"]
    assert rows["stream-async"]["status"] == "ok"  # opens X by path: no listing needed
    # declared by the workloads (the worker, asv and pytest-benchmark consult the same reason), not guessed from an error
    assert workloads.REGISTRY["lazy-open"].unsupported_reason(points[0]) == rows["lazy-open"]["error"]
    assert workloads.REGISTRY["lazy-open"].unsupported_reason(points[0].with_axes(consolidated="on")) is None
    assert workloads.REGISTRY["stream-async"].unsupported_reason(points[0]) is None
    assert workloads.REGISTRY["write"].unsupported_reason(points[0]) is None


@needs_nginx
def test_client_options_change_requests_and_are_checked(tiny_h5ad: Path, tmp_path: Path) -> None:
    """s3fs sends a HEAD before each whole-object GET by default; `s3fs-no-head` sends the GET alone."""
    from harness.matrix import invalid_reason, parse_axes, point_by_id
    from harness.runtime import IOConfig

    with pytest.raises(HarnessError, match="unknown client options"):
        parse_axes(["client=s3fs-fast"])
    assert "apply to s3-fsspec only" in invalid_reason(Point.of(store="s3-obstore", client="s3fs-no-head"))
    with pytest.raises(HarnessError, match="apply to s3-fsspec only"):
        IOConfig(store="http-fsspec", client="s3fs-no-head")
    points = [
        Point.of(store="s3-fsspec", pipeline="fused", sharding="none", client=c) for c in ("default", "s3fs-no-head")
    ]
    assert points[1].id.endswith("/client-s3fs-no-head") and point_by_id(points[1].id) == points[1]
    run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=points,
            workloads=["read"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
        )
    )
    rows = {r["point_id"]: r for r in results.iter_rows(results.results_file(tmp_path)) if r["workload"] == "read"}
    assert all(rows[p.id]["status"] == "ok" for p in points), [r.get("error") for r in rows.values()]  # verified reads
    default, no_head = (rows[p.id]["requests"] for p in points)
    assert default.get("HEAD", [0])[0] > 0 and no_head.get("HEAD", [0])[0] == 0
    assert no_head["GET"][0] == default["GET"][0]  # same objects, one request each instead of two


def test_missing_lua_module_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(network, "LUA_MODULES", (str(tmp_path / "no-such-module.so"),))
    with pytest.raises(HarnessError, match="added latency needs nginx's Lua module"):
        network.Network.parse("latency=20ms")
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        with pytest.raises(HarnessError, match="a hanging fault needs nginx's Lua module"):
            servers.start_http(tmp_path, faults={"/X/": 0})
    assert network.Network.parse("rate=1gbit").rate_bytes_per_s == 125_000_000  # no Lua needed for a rate
