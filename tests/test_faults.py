"""Storage faults: a full disk during a write, store files deleted or truncated between write and read.
Each is detected and reported; none gives a silently wrong value."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import VerificationError
from harness.matrix import Point
from harness.measure import context, network, servers, workloads
from harness.measure.batch import run_batch


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 160 KiB tmpfs (root only): smaller than the tiny dataset's store."""
    mount = tmp_path / "small"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_write_is_a_failed_row(small_disk: Path, tiny_h5ad: Path) -> None:
    point = Point.of(pipeline="python", codec="none", sharding="none")  # many small files, no compression
    got = {
        k: r.to_json()
        for k, r in run_batch(
            [point], tiny_h5ad, ["write", "read"], repeats=1, warmup=0, workdir=small_disk / "w", timeout=120
        ).items()
    }
    write, read = got[(point.id, "write")], got[(point.id, "read")]
    assert write["status"] == "failed" and read["status"] == "failed"
    assert "No space left on device" in write.get("error", "") + write.get("stderr_tail", "")


def _written(tiny_adata, tmp_path: Path) -> context.Context:
    point = Point.of(pipeline="fused", sharding="rows-16x2")
    ctx = context.Context(point, tiny_adata, tmp_path)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    return ctx


def _read_and_verify(ctx: context.Context) -> None:
    work = workloads.Read(ctx)
    with work.config():
        work.run()
    work.verify()


def test_truncated_shard_fails_the_read(tiny_adata, tmp_path: Path) -> None:
    ctx = _written(tiny_adata, tmp_path)
    shard = sorted((ctx.on_disk / "X" / "data" / "c").iterdir())[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ValueError, match="checksum"):  # the shard index's crc32c catches the cut
        _read_and_verify(ctx)


def test_deleted_shard_fails_verification_not_silently(tiny_adata, tmp_path: Path) -> None:
    ctx = _written(tiny_adata, tmp_path)
    sorted((ctx.on_disk / "X" / "data" / "c").iterdir())[0].unlink()  # zarr reads a missing chunk as fill values
    with pytest.raises(VerificationError, match="X"):
        _read_and_verify(ctx)


def test_deleted_metadata_fails_the_read(tiny_adata, tmp_path: Path) -> None:
    ctx = _written(tiny_adata, tmp_path)
    (ctx.on_disk / "obs" / "zarr.json").unlink()
    (ctx.on_disk / "zarr.json").write_text(
        (ctx.on_disk / "zarr.json").read_text().replace('"consolidated_metadata"', '"x_"')
    )
    with pytest.raises(ValueError, match="not found"):
        _read_and_verify(ctx)


@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed"
)
def test_a_store_that_blocks_times_out_and_is_recorded(tiny_h5ad: Path, tmp_path: Path) -> None:

    if not network.lua_available():
        pytest.skip("a hanging request needs nginx's Lua module")
    point = Point.of(store="http-obstore", pipeline="fused")
    with servers.start_http(tmp_path, faults={"/X/data/": 0}) as http:  # every request for X's values hangs
        env = {context.HTTP_ROOT_ENV: str(tmp_path), context.HTTP_URL_ENV: http.url}
        got = {
            k: r.to_json()
            for k, r in run_batch(
                [point],
                tiny_h5ad,
                ["lazy-open", "read"],
                repeats=1,
                warmup=0,
                workdir=tmp_path / "w",
                timeout=20,
                env=env,
            ).items()
        }
    assert got[(point.id, "lazy-open")]["status"] == "ok"  # metadata only: finished before the hang, and kept
    read = got[(point.id, "read")]
    assert read["status"] == "timeout" and "timeout of 20s" in read["error"]
