"""GPU capability: what of an AnnData store reads onto a GPU, per element type and codec, bit for bit.

zarr reads into device memory with `zarr.config.enable_gpu()` (cupy buffers); kvikio's `GDSStore`
reads files with cuFile (GPUDirect Storage, or its compatibility mode). anndata has no GPU reader,
so sparse matrices are assembled from their data/indices/indptr arrays as cupyx sparse matrices.
Every GPU result is copied back and compared byte for byte with zarr's CPU read of the same array.
Nothing here imports cupy or kvikio unless a probe or a GPU read runs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import one_line
from ..runtime import Pipeline, parse_codec
from ..runtime.gpu import cuda_probe, gds_unsupported_reason, open_gds_store
from ..runtime.pipelines import unavailable_reason

#: Element types of the capability table, with the store path of their array(s); a dataset's X may
#: be dense or sparse, which the table says per row.
ELEMENTS: dict[str, str] = {
    "X": "X",
    "layers/counts": "layers/counts",
    "obsm/X_pca (dense)": "obsm/X_pca",
    "obs numeric column": "obs/total_counts",
    "obs categorical column": "obs/cell_type",
}


@dataclass
class Probe:
    """What this machine offers the GPU pipeline; `reason` is None when GPU points can run."""

    reason: str | None
    devices: int = 0
    device: str = ""
    driver: str = ""
    cupy: str = ""
    kvikio: str = ""
    gds: str = ""
    gpu_codecs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.reason:
            return [
                f"GPU: not available: {self.reason}",
                "every gpu pipeline point and gds store point is 'unsupported' with this reason",
            ]
        return [
            f"GPU: {self.devices} device(s), {self.device}, driver {self.driver}, cupy {self.cupy}",
            f"kvikio: {self.kvikio or 'not installed (pip install .[gpu])'}; GDS: {self.gds}",
            f"codecs with a GPU implementation in this zarr/kvikio: {', '.join(self.gpu_codecs) or 'none (decoding runs on the CPU, data is copied to the GPU)'}",
        ]


def probe() -> Probe:
    """CUDA through cupy (inside a try), kvikio and its GDS mode, GPU codecs zarr or kvikio export."""
    reason = cuda_probe()
    if reason:
        return Probe(reason)
    import cupy

    runtime = cupy.cuda.runtime
    found = Probe(None, devices=runtime.getDeviceCount(), cupy=cupy.__version__)
    try:
        props = runtime.getDeviceProperties(0)
        found.device = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        found.driver = str(runtime.driverGetVersion())
    except Exception as exc:  # noqa: BLE001 - a probe reports, never raises
        found.device = f"unknown ({type(exc).__name__})"
    if importlib.util.find_spec("kvikio") is not None:
        try:
            import kvikio
            import kvikio.defaults

            found.kvikio = getattr(kvikio, "__version__", "installed")
            found.gds = (
                "compatibility mode (POSIX reads, no GPUDirect)"
                if kvikio.defaults.is_compat_mode_preferred()
                else "available"
            )
        except Exception as exc:  # noqa: BLE001
            found.gds = f"unknown: {one_line(exc)}"
    else:
        found.gds = "kvikio is not installed (pip install .[gpu])"
    found.gpu_codecs = gpu_codecs()
    return found


def gpu_codecs() -> list[str]:
    """Codec classes with a GPU implementation that zarr or kvikio export in this environment."""
    names = []
    for module, attrs in (
        ("zarr.codecs.gpu", ("NvcompZstdCodec", "ZstdCodec")),
        ("kvikio.zarr", ("NvCompBatchCodec",)),
    ):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            continue
        try:
            mod = importlib.import_module(module)
        except Exception:  # noqa: BLE001 - absent in this version
            continue
        names += [f"{module}.{a}" for a in attrs if hasattr(mod, a)]
    return names


def same_bits(gpu_value: Any, cpu_value: Any) -> bool:
    """Bit-for-bit equality of a device array (anything with `.get()`) and a host array."""
    import numpy as np

    host = gpu_value.get() if hasattr(gpu_value, "get") else np.asarray(gpu_value)
    cpu = np.asarray(cpu_value)
    return host.dtype == cpu.dtype and host.shape == cpu.shape and host.tobytes() == cpu.tobytes()


def _arrays(group: Any, path: str) -> list[str]:
    """The leaf arrays behind an element: data/indices/indptr of a sparse group, codes/categories of a
    categorical, or the array itself."""
    node = group[path]
    kind = node.attrs.get("encoding-type", "array")
    if kind in ("csr_matrix", "csc_matrix"):
        return [f"{path}/{k}" for k in ("data", "indices", "indptr")]
    if kind == "categorical":
        return [f"{path}/codes", f"{path}/categories"]
    return [path]


def read_on_gpu(store: Any, path: str) -> dict[str, Any]:
    """Every leaf array of an element read with zarr's GPU buffers (cupy arrays). anndata's `read_elem`
    is tried first (it supports dense arrays); its outcome is kept under the key "anndata.read_elem"."""
    import zarr

    with zarr.config.enable_gpu():
        group = zarr.open_group(store, mode="r")
        via_anndata = _try_read_elem(group[path])
        leaves = {leaf: group[leaf][...] for leaf in _arrays(group, path)}
        kind = group[path].attrs.get("encoding-type", "array")
        if kind in ("csr_matrix", "csc_matrix"):  # anndata has no GPU reader: assemble cupyx sparse ourselves
            import cupyx.scipy.sparse as cusparse

            build = cusparse.csr_matrix if kind == "csr_matrix" else cusparse.csc_matrix
            shape = tuple(group[path].attrs["shape"])
            build((leaves[f"{path}/data"], leaves[f"{path}/indices"], leaves[f"{path}/indptr"]), shape=shape)
        if via_anndata is not None:
            leaves["anndata.read_elem"] = via_anndata
        return leaves


def _try_read_elem(node: Any) -> Any:
    """anndata's reader on a GPU-configured zarr node: the cupy array it returned, or None where it
    does not give one (sparse and dataframe readers build numpy/scipy objects)."""
    import anndata as ad

    try:
        value = ad.io.read_elem(node)
    except Exception:  # noqa: BLE001 - recorded as "not via anndata", the zarr path still runs
        return None
    return value if type(value).__module__.startswith("cupy") else None


def capability_table(
    store_path: Path,
    codec: str,
    *,
    store_kind: str = "local",
    read_gpu: Callable[[Any, str], dict[str, Any]] = read_on_gpu,
) -> list[dict[str, Any]]:
    """One row per element type: works (bit-for-bit equal to the CPU read, with seconds) / fails (error) /
    unsupported (the probe's reason)."""
    import zarr

    reason = gds_unsupported_reason() if store_kind == "gds" else cuda_probe()
    rows = []
    cpu_group = zarr.open_group(store_path, mode="r")
    for element, path in ELEMENTS.items():
        row: dict[str, Any] = {"element": element, "path": path, "codec": codec, "store": store_kind}
        if path not in cpu_group:
            rows.append({**row, "status": "absent", "error": f"{path} is not in this store"})
            continue
        if reason:
            rows.append({**row, "status": "unsupported", "error": reason})
            continue
        try:
            store = (
                open_gds_store(store_path, read_only=True)
                if store_kind == "gds"
                else zarr.storage.LocalStore(store_path, read_only=True)
            )
            t0 = time.perf_counter()
            got = read_gpu(store, path)
            seconds = time.perf_counter() - t0
            via_anndata = got.pop("anndata.read_elem", None)
            bad = [leaf for leaf, value in got.items() if not same_bits(value, cpu_group[leaf][...])]
            if via_anndata is not None and not same_bits(via_anndata, cpu_group[path][...]):
                bad.append("anndata.read_elem")
            kind = cpu_group[path].attrs.get("encoding-type", "array")
            row.update(kind=kind, via="anndata.read_elem + zarr" if via_anndata is not None else "zarr arrays")
            if bad:
                rows.append({**row, "status": "fails", "error": f"differs from the CPU read: {', '.join(bad)}"})
            else:
                rows.append({**row, "status": "works", "seconds": seconds})
        except Exception as exc:  # noqa: BLE001 - out of memory, unsupported dtype...: a row, never a crash
            rows.append({**row, "status": "fails", "error": one_line(exc)[:300]})
    return rows


def gpu_write_interop(
    store_path: Path,
    codec: str,
    out: Path,
    *,
    readers: tuple[str, ...] = ("python", "fused", "zarrs"),
    to_device: Callable[[Any], Any] | None = None,
) -> list[dict[str, Any]]:
    """Write every leaf array of the elements from device memory (zarr with GPU buffers, the codec's
    compressors) and read each back with the CPU pipelines: equal bit for bit, or the error. The
    numcodecs#424 class of bug shows here; with no GPU codec in zarr yet, the encode runs on the host."""
    import zarr

    reason = cuda_probe()
    cpu = zarr.open_group(store_path, mode="r")
    rows = []
    on_device = to_device is None and not reason  # False when a test's host function stands in for the device
    if on_device:
        import cupy

        to_device = cupy.asarray
    for element, path in ELEMENTS.items():
        if path not in cpu:
            continue
        row: dict[str, Any] = {"element": element, "path": path, "codec": codec, "direction": "GPU write -> CPU read"}
        if reason and to_device is None:
            rows.append({**row, "status": "unsupported", "error": reason})
            continue
        try:
            leaves = [leaf for leaf in _arrays(cpu, path) if cpu[leaf].dtype.kind in "biuf"]  # numeric leaves
            target = zarr.open_group(out / f"{codec}-{path.replace('/', '_')}", mode="w")
            with zarr.config.enable_gpu() if on_device else contextlib.nullcontext():
                for leaf in leaves:
                    values = cpu[leaf][...]
                    target.create_array(
                        leaf.replace("/", "_"), data=to_device(values), compressors=parse_codec(codec).build()
                    )
            bad = []
            for reader in map(Pipeline, readers):
                if unavailable_reason(reader):
                    continue
                with zarr.config.set({"codec_pipeline.path": reader.path}):
                    back = zarr.open_group(target.store, mode="r")
                    bad += [
                        f"{leaf} by {reader}"
                        for leaf in leaves
                        if not same_bits(back[leaf.replace("/", "_")][...], cpu[leaf][...])
                    ]
            rows.append(
                {**row, "status": "fails", "error": f"differs: {', '.join(bad)}"} if bad else {**row, "status": "works"}
            )
        except Exception as exc:  # noqa: BLE001
            rows.append({**row, "status": "fails", "error": one_line(exc)[:300]})
    return rows
