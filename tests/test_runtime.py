"""harness.runtime: layering, settings restored after activate(), fallbacks, clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness import runtime
from harness.errors import HarnessError
from harness.measure import verify
from harness.runtime import IOConfig


def test_layering_defaults_tuned_env_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert runtime.layered() == IOConfig()  # defaults are anndata's own choices
    tuned = tmp_path / "recommended.json"
    tuned.write_text('{"config": {"pipeline": "zarrs", "codec": "zstd-3", "sharding": "rows-64x4"}}')
    monkeypatch.setenv("HARNESS_CODEC", "blosc-lz4-shuffle")
    monkeypatch.setenv("HARNESS_CONSOLIDATED", "false")
    cfg = runtime.layered(tuned, sharding="none")
    assert cfg == IOConfig(pipeline="zarrs", codec="blosc-lz4-shuffle", sharding="none", consolidated=False)


def test_activate_restores_pipeline_and_anndata_settings() -> None:
    import anndata as ad
    import zarr

    before = (zarr.config.get("codec_pipeline.path"), ad.settings.zarr_write_format, ad.settings.auto_shard_zarr_v3)
    with IOConfig(pipeline="python").activate():
        assert zarr.config.get("codec_pipeline.path").endswith("BatchedCodecPipeline")
    assert (
        zarr.config.get("codec_pipeline.path"),
        ad.settings.zarr_write_format,
        ad.settings.auto_shard_zarr_v3,
    ) == before


def test_write_read_and_read_lazy_round_trip(tiny_adata, tmp_path: Path) -> None:
    cfg = IOConfig(pipeline="zarrs", codec="blosc-zstd-bitshuffle", sharding="rows-32x2", store="obstore")
    cfg.write(tiny_adata, tmp_path / "out.zarr")
    verify.assert_anndata_equal(cfg.read(tmp_path / "out.zarr"), tiny_adata)
    lazy = cfg.read_lazy(str(tmp_path / "out.zarr"))
    verify.assert_anndata_equal(lazy[:10].to_memory(), tiny_adata[:10])


def test_missing_optional_package_warns_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zarrs" else real(name, *a))
    with pytest.warns(UserWarning, match="zarrs is not installed"):
        assert IOConfig(pipeline="zarrs").effective().pipeline == "fused"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"colour": 1}', "unknown IOConfig keys"),
        ('{"codec": "lzma"}', "unknown codec"),
    ],
)
def test_corrupt_tuned_file_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    bad = tmp_path / "recommended.json"
    bad.write_text(text)
    with pytest.raises(HarnessError, match=needle):
        runtime.layered(bad)


def test_missing_tuned_file() -> None:
    with pytest.raises(HarnessError, match="does not exist"):
        runtime.layered("/nonexistent/recommended.json")
