"""The row samples the search's rungs measure: how many rows, and how they are drawn."""

from __future__ import annotations

from pathlib import Path

MIN_SAMPLE_ROWS = 500


def rung_sizes(n_obs: int) -> list[int]:
    """Sample sizes of the rungs: n/27, n/9, n/3 rows, at least MIN_SAMPLE_ROWS, deduplicated."""
    sizes = sorted({min(n_obs, max(MIN_SAMPLE_ROWS, n_obs // d)) for d in (27, 9, 3)})
    return sizes or [n_obs]


def subsample(dataset_path: Path, rows: int, workdir: Path, seed: int = 0) -> Path:
    """A random row sample of the dataset as .h5ad (read backed, so big datasets stay on disk)."""
    import anndata as ad
    import numpy as np

    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"sample-{rows}-seed{seed}.h5ad"
    if out.exists():
        return out
    full = ad.read_h5ad(dataset_path, backed="r") if dataset_path.is_file() else ad.io.read_zarr(dataset_path)
    if rows >= full.n_obs:
        return dataset_path
    idx = np.sort(np.random.default_rng(seed).choice(full.n_obs, size=rows, replace=False))
    full[idx].to_memory().write_h5ad(out)
    return out
