"""`pip install .` without extras gives a working runtime: in a fresh virtual environment, a generated
io_config.py writes, reads and lazily reads an AnnData; a config asking for a missing optional package
warns with the package's name and falls back; the CLI names the extra it needs instead of a traceback.

Installing takes a minute or two (anndata, zarr, dask from the package index, cached by pip after the
first time); without the index the tests skip with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runtime import IOConfig
from harness.tune.emit import module_text

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = (
    "No matching distribution",
    "Could not find a version",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Connection refused",
    "Max retries exceeded",
    "ProxyError",
)
#: What the runtime must work without: the measuring side and the optional packages a config may ask for
#: (fsspec itself comes with dask, which anndata[lazy] needs for read_lazy).
NOT_CORE = {
    "rich",
    "psutil",
    "s3fs",
    "moto",
    "matplotlib",
    "asv",
    "pytest-benchmark",
    "zarrs",
    "obstore",
    "uvloop",
    "distributed",
}

SCRIPT = r"""
import json, sys, warnings
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
sys.path.insert(0, sys.argv[1])
from io_config import recommended_config
from harness.runtime import IOConfig

rng = np.random.default_rng(0)
X = sp.random(60, 30, density=0.2, format="csr", dtype=np.float32, random_state=0)
adata = ad.AnnData(X=X, obs=pd.DataFrame({"kind": pd.Categorical(rng.choice(["a", "b"], 60))}, index=[f"c{i}" for i in range(60)]),
                   var=pd.DataFrame(index=[f"g{i}" for i in range(30)]), layers={"counts": X.copy()})

def same(got):
    return (got.shape == adata.shape and (got.X != adata.X).nnz == 0 and (got.layers["counts"] != adata.X).nnz == 0
            and list(got.obs["kind"].astype(str)) == list(adata.obs["kind"].astype(str)))

out = {}
cfg = recommended_config()
cfg.write(adata, sys.argv[2] + "/tuned.zarr")
out["read"] = same(cfg.read(sys.argv[2] + "/tuned.zarr"))
out["read_lazy"] = same(cfg.to_memory(cfg.read_lazy(sys.argv[2] + "/tuned.zarr")))
out["config"] = cfg.to_dict()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    wants = IOConfig(pipeline="zarrs", store="obstore", loop="uvloop")
    wants.write(adata, sys.argv[2] + "/fallback.zarr")
    out["fallback_read"] = same(wants.read(sys.argv[2] + "/fallback.zarr"))
out["effective"] = wants.effective().to_dict()
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def core_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with `pip install .` (no extras) of a copy of this checkout."""
    base = tmp_path_factory.mktemp("core")
    source = base / "src"
    source.mkdir()
    shutil.copytree(ROOT / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    python = base / "venv" / "bin" / "python"
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        if any(word in "\n".join(tail) for word in OFFLINE):
            pytest.skip(f"the package index cannot be reached: {' '.join(tail)[:300]}")
        pytest.fail(f"pip install . failed: {' '.join(tail)[:1000]}")
    return python


def installed(python: Path) -> dict[str, str]:
    lines = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return dict(line.lower().split("==", 1) for line in lines if "==" in line)


def test_core_install_has_the_runtime_and_nothing_of_the_bench(core_env: Path) -> None:
    packages = installed(core_env)
    assert {"anndata", "zarr", "numcodecs", "harness"} <= set(packages)
    assert NOT_CORE & set(packages) == set(), sorted(NOT_CORE & set(packages))


def test_generated_io_config_writes_reads_and_reads_lazily_without_extras(core_env: Path, tmp_path: Path) -> None:
    tuned = IOConfig(codec="blosc-lz4-bitshuffle", sharding="rows-16x2")
    record = {
        "outcome": "change",
        "config": tuned.to_dict(),
        "point_id": "tuned",
        "reference": "anndata-default",
        "objective": "balanced",
        "verification": [],
        "provenance": {"date": "today"},
        "dataset": {"name": "test", "fingerprint": "0"},
    }
    (tmp_path / "io_config.py").write_text(module_text(record))
    done = subprocess.run(
        [core_env, "-c", SCRIPT, str(tmp_path), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["read"] and got["read_lazy"] and got["fallback_read"]
    assert got["config"] == tuned.to_dict()
    assert (got["effective"]["pipeline"], got["effective"]["store"], got["effective"]["loop"]) == (
        "fused",
        "local",
        "asyncio",
    )
    for package in ("zarrs", "obstore", "uvloop"):
        assert any(w.startswith(f"{package} is not installed (pip install {package})") for w in got["warnings"]), got[
            "warnings"
        ]


def test_cli_without_the_bench_extra_names_the_extra(core_env: Path, tiny_h5ad: Path, tmp_path: Path) -> None:
    harness = core_env.parent / "harness"
    done = subprocess.run(
        [harness, "run", "--dataset", str(tiny_h5ad), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pip install 'harness[bench]'" in done.stderr and done.stderr.startswith("harness: error: ")
