from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.measure import datasets


def test_synthetic_data_looks_like_10x_counts(tiny_adata) -> None:
    counts = tiny_adata.layers["counts"]
    per_cell = np.diff(counts.indptr)
    assert 5 <= np.median(per_cell) <= 60  # TINY asks for a median of 30 non-zeros per cell
    assert np.all(counts.data == np.round(counts.data)) and counts.data.min() >= 1
    assert (counts.data == 1).mean() > 0.2 and counts.data.max() > 3  # mostly ones, with a tail
    assert tiny_adata.obs["cell_type"].dtype == "category"
    assert {"total_counts", "pct_counts_mt", "batch"} <= set(tiny_adata.obs.columns)
    assert tiny_adata.obsm["X_pca"].shape == (tiny_adata.n_obs, 50)
    assert tiny_adata.obs_names.is_unique


def test_generation_in_chunks_equals_one_chunk(tmp_path: Path) -> None:
    size = datasets.SyntheticSize(30, 100, 10)
    a = datasets.load(datasets.generate(tmp_path / "a.h5ad", size, chunk_cells=7))
    assert a.n_obs == 30 and a.X.shape == (30, 100) and a.layers["counts"].nnz == a.X.nnz


def test_fingerprint_is_content_based(tiny_h5ad: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.h5ad"
    copy.write_bytes(tiny_h5ad.read_bytes())
    assert datasets.fingerprint(copy) == datasets.fingerprint(tiny_h5ad)


def test_builtin_dataset_comes_from_the_scanpy_wheel(tmp_path: Path) -> None:
    try:
        path = datasets.fetch_builtin("pbmc68k", tmp_path)
    except datasets.DownloadError as exc:  # no package index reachable: the message says so
        pytest.skip(str(exc))
    adata = datasets.load(path)
    assert adata.shape == (700, 765) and "bulk_labels" in adata.obs
