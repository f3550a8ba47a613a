"""GPU paths on a machine without CUDA: the probe's reason, unsupported points, and the bit-for-bit
capability logic exercised with a stand-in reader (the real GPU read needs cupy and a device)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.analysis import report, results
from harness.cli import main
from harness.matrix import Point, static_unsupported_reason
from harness.measure import gpu
from harness.runtime import IOConfig
from harness.runtime.gpu import cuda_probe

needs_no_cuda = pytest.mark.skipif(
    cuda_probe() is None, reason="CUDA is available: the CPU-only behaviour does not apply"
)


@needs_no_cuda
def test_without_cuda_every_gpu_read_is_unsupported_with_the_probe_reason(
    tiny_h5ad: Path, tmp_path: Path, capsys
) -> None:
    assert main(["gpu", "--dataset", str(tiny_h5ad), "--codecs", "zstd-0", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GPU: not available: ") and "Traceback" not in out
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    assert len(rows) == 3 * len(gpu.ELEMENTS) and {r["status"] for r in rows} == {"unsupported"}
    assert all(r["error"] == cuda_probe() for r in rows)
    text = report.build(tmp_path, tmp_path / "rep").read_text()
    assert "## GPU capability" in text and "## Not measured" not in text


@needs_no_cuda
def test_gds_store_points_are_unsupported_without_cuda() -> None:
    assert static_unsupported_reason(Point.of(store="gds", pipeline="gpu")).startswith("gds store: ")


def test_capability_logic_is_bit_for_bit(tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zarr

    target = tmp_path / "s.zarr"
    IOConfig(pipeline="fused", codec="zstd-0").write(tiny_adata, target)
    monkeypatch.setattr(gpu, "cuda_probe", lambda: None)  # pretend a device exists; the reader stands in for the GPU

    def faithful(store, path):
        group = zarr.open_group(store, mode="r")
        return {leaf: group[leaf][...] for leaf in gpu._arrays(group, path)}

    def flips_one_bit(store, path):
        got = faithful(store, path)
        leaf = next(iter(got))
        value = np.array(got[leaf], copy=True)
        if value.dtype.kind in "iuf" and value.size:
            value.view(np.uint8)[0] ^= 1
        else:
            value = value[:-1]
        return {**got, leaf: value}

    works = gpu.capability_table(target, "zstd-0", read_gpu=faithful)
    assert {r["status"] for r in works} == {"works"} and all(r["seconds"] >= 0 for r in works)
    broken = gpu.capability_table(target, "zstd-0", read_gpu=flips_one_bit)
    assert {r["status"] for r in broken} == {"fails"} and all("differs from the CPU read" in r["error"] for r in broken)


def test_same_bits_checks_dtype_and_shape() -> None:
    a = np.arange(4, dtype="int32")
    assert gpu.same_bits(a, a.copy())
    assert not gpu.same_bits(a.astype("int64"), a)
    assert not gpu.same_bits(a[:3], a)


def test_write_interop_logic_reads_back_under_every_cpu_pipeline(tiny_adata, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "s.zarr"
    IOConfig(pipeline="fused", codec="zstd-0").write(tiny_adata, target)
    if cuda_probe() is None:
        pytest.skip("with CUDA the real device path runs in harness gpu")
    rows = gpu.gpu_write_interop(target, "zstd-0", tmp_path / "out")
    assert rows and {r["status"] for r in rows} == {"unsupported"}
    monkeypatch.setattr(gpu, "cuda_probe", lambda: None)  # the host stands in for the device
    rows = gpu.gpu_write_interop(target, "zstd-0", tmp_path / "out2", to_device=np.asarray)
    assert {r["status"] for r in rows} == {"works"}, rows
