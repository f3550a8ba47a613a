"""The pipeline that actually ran is detected, not assumed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import harness.runtime.gpu as rgpu
import harness.runtime.pipelines as rpipelines
from harness.matrix import Point
from harness.measure import context, trace


def _trace_write(point: Point, adata, tmp_path: Path) -> trace.PipelineTracer:
    ctx = context.Context(point, adata, tmp_path)
    with context.zarr_config(point, "write"), trace.trace_pipelines() as tracer:
        context.write_store(ctx, context.write_input(ctx))
    return tracer


@pytest.mark.skipif(rpipelines.unavailable_reason("zarrs") is not None, reason="zarrs not installed")
def test_zarrs_on_local_runs_rust_for_numeric_arrays(tiny_adata, tmp_path: Path) -> None:
    tracer = _trace_write(Point.of(store="local", pipeline="zarrs"), tiny_adata, tmp_path)
    per_array = tracer.summary()
    assert per_array["X/data"] == ["zarrs"]
    assert "zarrs" not in per_array["obs/_index/values"]  # strings fall back to Python


@pytest.mark.skipif(rpipelines.unavailable_reason("zarrs") is not None, reason="zarrs not installed")
def test_zarrs_on_fsspec_silent_fallback_is_caught(tiny_adata, tmp_path: Path) -> None:
    tracer = _trace_write(Point.of(store="fsspec", pipeline="zarrs"), tiny_adata, tmp_path)
    assert tracer.used, "the tracer saw no pipeline at all"
    assert "zarrs" not in tracer.effective()


def test_fused_and_python_are_told_apart(tiny_adata, tmp_path: Path) -> None:
    fused = _trace_write(Point.of(pipeline="fused"), tiny_adata, tmp_path / "a")
    python = _trace_write(Point.of(pipeline="python"), tiny_adata, tmp_path / "b")
    assert fused.effective() == ["fused"]
    assert python.effective() == ["python"]


def test_anndata_default_baseline_runs_fused_inside_write_zarr(tiny_adata, tmp_path: Path) -> None:
    from harness.matrix import baseline_point

    tracer = _trace_write(baseline_point("anndata-default"), tiny_adata, tmp_path)
    assert tracer.effective() == ["fused"]


def test_gpu_without_cuda_is_unsupported_with_a_reason() -> None:
    reason = rgpu.cuda_probe()
    if reason is None:
        pytest.skip("a CUDA device is present: the GPU path is exercised for real elsewhere")
    assert rpipelines.unavailable_reason("gpu") == reason
    assert "cupy" in reason or "CUDA" in reason


def test_uvloop_becomes_zarrs_io_loop_when_installed_first() -> None:
    code = "from harness.runtime.pipelines import install_loop; print(install_loop('uvloop')[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().startswith("uvloop")
    code = "from harness.runtime.pipelines import install_loop; print(install_loop('asyncio')[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().startswith("asyncio")


def test_array_path_strips_chunk_keys() -> None:
    class StorePath:  # the tracer keys off the class name zarr uses
        def __init__(self, path: str) -> None:
            self.path = path

    assert trace._array_path([(StorePath("X/data/c/0"), None)]) == "X/data"
    assert trace._array_path([(StorePath("obsm/X_pca/c/0/0"), None)]) == "obsm/X_pca"
    assert trace._array_path([]) is None
