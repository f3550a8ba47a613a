"""How far each point is from what the hardware allows: its attribution (`harness run --attribute`) beside
the ceilings `harness ceiling` measured on the same dataset.

A write's ceiling is the slower of (a) encoding every array with the point's codec for that array's role on
all cores and (b) writing its store's bytes with fsync; a read's, the slower of decoding on all cores and
reading the bytes cold. The share of the ceiling is ceiling time / measured time (1.0: at the limit).
"""

from __future__ import annotations

from typing import Any

from ..runtime import parse_codecs

BUCKETS = ("encode_s", "decode_s", "store_get_s", "store_set_s", "rest_s")


def _codec_for(codecs: Any, array: str) -> str:
    """The codec name the point gives an array of the ceiling table (`X.data`, `layers/counts.indices`, `obsm/X_pca`)."""
    matrix, _, part = array.partition(".")
    if part == "data":
        return codecs.for_data("X" if matrix == "X" else "layers" if matrix.startswith("layers/") else matrix).name
    if part in ("indices", "indptr"):
        return codecs.index.name
    return codecs.dense.name


def ceiling_seconds(row: dict[str, Any], ceilings: list[dict[str, Any]]) -> float | None:
    """The point's ceiling for a write or read (see the module's docstring), or None when not measured."""
    workload = row.get("workload")
    if workload not in ("write", "read") or not row.get("bytes"):
        return None
    codecs = parse_codecs((row.get("point") or {}).get("codec", "zstd-0"))
    ceilings = [c for c in ceilings if c.get("status", "ok") == "ok"]  # a codec that failed on an array: no limit
    cores = max((c["threads"] for c in ceilings if "threads" in c), default=1)
    by = {(c["array"], c["codec"]): c for c in ceilings if c.get("threads") == cores}
    storage = {c["what"]: c["mb_s"] for c in ceilings if "what" in c}
    arrays = sorted({c["array"] for c in ceilings if "array" in c})
    rate = "encode_mb_s" if workload == "write" else "decode_mb_s"
    codec_s = 0.0
    for array in arrays:
        found = by.get((array, _codec_for(codecs, array)))
        if found is None:
            return None  # this codec was not measured by `harness ceiling`
        codec_s += found["raw_bytes"] / 1e6 / found[rate]
    disk = storage.get("fsync-write" if workload == "write" else "cold-read")
    return max(codec_s, row["bytes"] / 1e6 / disk) if disk else codec_s


def attribution_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """One line per attributed (point, workload): GB/s, share of its ceiling, and where the seconds went."""
    attributed = [r for r in rows if isinstance(r.get("attribution"), dict)]
    if not attributed:
        return []
    ceilings = {}
    for r in rows:
        if r.get("kind") == "ceiling":
            ceilings.setdefault((r.get("dataset") or {}).get("fingerprint"), []).append(r)
    md = [
        "| point | workload | wall s | GB/s | share of ceiling | encode s | decode s | store get s | store set s | "
        "rest s | CPU use |",
        "|---" * 11 + "|",
    ]
    for r in attributed:
        a = r["attribution"]
        gb_s = a.get("raw_bytes", 0) / 1e9 / a["wall_s"] if a.get("wall_s") else 0
        ceiling = ceiling_seconds(r, ceilings.get((r.get("dataset") or {}).get("fingerprint"), []))
        share = f"{ceiling / a['wall_s']:.0%}" if ceiling and a.get("wall_s") else "–"
        cells = " | ".join(f"{a.get(b, 0):.2f}" for b in BUCKETS)
        md.append(
            f"| `{r['point_id']}` | {r['workload']} | {a['wall_s']:.2f} | {gb_s:.2f} | {share} | {cells} | "
            f"{a.get('cpu_use', 0):.0%} |"
        )
    return [
        *md,
        "",
        "Seconds are summed over threads (with both cores busy a bucket can exceed the wall time); rest = "
        "wall minus the busy seconds spread over the cores: anndata, zarr's Python, copies and waiting. The share of "
        "the ceiling compares the wall time with the slower of encoding (decoding) every array on all cores and "
        "writing (reading cold) the store's bytes, from `harness ceiling` on the same dataset.",
    ]
