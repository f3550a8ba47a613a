"""The zarr-v3 guide's claims, each with the smallest sweep that decides it and the rule that does.

A claim names the points and workloads it needs, locally (`local`) or on the remote store under the remote
network condition (`remote`); `judge` reads the measured rows through `Evidence` and returns a verdict:
holds, does not hold, holds in part, or cannot be checked here (with why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..analysis.compare import Comparison, compared
from ..analysis.stats import median
from ..matrix import Point, baseline_point

HOLDS, FAILS, PART, UNCHECKED = "holds", "does not hold", "holds in part", "cannot be checked here"


@dataclass(frozen=True)
class Need:
    points: tuple[Point, ...]
    workloads: tuple[str, ...]
    remote: bool = False
    readers: tuple[str, ...] = ()
    #: at most this many timed repeats, without a warm-up: for a point whose one run takes many minutes (the
    #: guide's callback did not write 100k once in 30 min here); its evidence then says it has no spread.
    most_repeats: int | None = None


@dataclass
class Verdict:
    verdict: str
    evidence: list[str] = field(default_factory=list)


def on_stack(point: Point, fused: bool) -> Point:
    """The point as a stack measures it: "zarr-python" is the Fused pipeline where the stack's zarr has it
    (3.3 and later; anndata 0.13 switches to it) and the Batched one before, so on an older zarr a Fused point
    is measured, and judged, on the Batched pipeline."""
    if fused or point.axis("pipeline") != "fused" or point.api != "dispatched":
        return point
    return point.with_axes(pipeline="python")


class Evidence:
    """What the judges ask of the measured rows (filled in by `harness.claims`), with every point read as
    the stack measured it (`on_stack`)."""

    def __init__(
        self,
        compare: Callable[[Point, Point, str, bool], Comparison | None],
        row: Callable[[Point, str, bool], dict | None],
        gpu_rows: list[dict],
        gpu_reason: str | None,
        fused: bool = True,
    ) -> None:
        self.fused, self.gpu_rows, self.gpu_reason = fused, gpu_rows, gpu_reason
        self.compare = lambda a, b, w, remote: compare(on_stack(a, fused), on_stack(b, fused), w, remote)
        self.row = lambda point, w, remote: row(on_stack(point, fused), w, remote)

    def pipeline(self, point: Point) -> str:
        """The pipeline a point was measured on, for the evidence's text."""
        return on_stack(point, self.fused).axis("pipeline")

    def faster(self, a: Point, b: Point, workload: str, remote: bool = False) -> tuple[bool | None | object, str]:
        """Is B significantly faster than A? (None: no difference shown; MISSING: not measured), and the
        evidence text."""
        c = self.compare(a, b, workload, remote)
        if c is None:
            return MISSING, f"{workload}: not measured"
        text = f"{workload} {1 / c.ratio:.2f}x (p={c.p_value:.3f})" if c.p_value is not None else f"{workload} n/a"
        return (c.ratio < 1 if c.significant else None), text


@dataclass(frozen=True)
class Claim:
    key: str
    quote: str
    needs: tuple[Need, ...]
    judge: Callable[[Evidence], Verdict]


#: A check that was not measured (e.g. the remote half with --local-only): left out of the verdict.
MISSING = object()


def _tally(results: list[bool | None | object], texts: list[str], all_true: str = HOLDS) -> Verdict:
    results = [r for r in results if r is not MISSING]
    if not results:
        return Verdict(UNCHECKED, texts or ["not measured"])
    yes, no = sum(r is True for r in results), sum(r is False for r in results)
    if yes and not no and yes == len(results):
        return Verdict(all_true, texts)
    if not yes:
        return Verdict(FAILS, texts)
    return Verdict(PART, texts)


P = Point.of
DEFAULT, V2, ZARRS_DEFAULT = (
    baseline_point(n) for n in ("anndata-default", "anndata-default-v2", "anndata-default+zarrs")
)
LOCAL = ("write", "read", "lazy-rows", "lazy-random")
LAZY = ("lazy-open", "lazy-rows", "lazy-random")


def _remote(point: Point, store: str = "s3-obstore", **axes: str) -> Point:
    return point.with_axes(store=store, **axes)


def judge_v3(ev: Evidence) -> Verdict:
    results, texts = [], []
    for workload, remote in [*((w, False) for w in LOCAL), *((w, True) for w in LAZY)]:
        ok, text = ev.faster(_remote(V2) if remote else V2, _remote(DEFAULT) if remote else DEFAULT, workload, remote)
        results.append(ok)
        texts.append(("remote " if remote else "") + text)
    return _tally(results, texts)


ON = P(pipeline="fused")
OFF = P(pipeline="fused", consolidated="off")


def judge_consolidated(ev: Evidence) -> Verdict:
    ok_open, t_open = ev.faster(_remote(OFF), _remote(ON), "lazy-open", True)
    ok_rows, t_rows = ev.faster(_remote(OFF), _remote(ON), "lazy-rows", True)
    http = ev.row(_remote(OFF, "http-obstore"), "lazy-open", True) or {}
    stale = ev.row(P(), "stale-check", False) or {}
    texts = [
        f"S3 without -> with: {t_open}, {t_rows}",
        f"HTTP without consolidated metadata: {http.get('status', 'not measured')} ({http.get('error', '')[:80]})",
        f"a removed obs column: {stale.get('error') or 'not checked'}",
    ]
    parts = [ok_open, http.get("status") == "unsupported", bool(stale.get("detected"))]
    return _tally(parts, texts)


def judge_obstore(ev: Evidence) -> Verdict:
    results, texts = [], []
    for loop in ("asyncio", "uvloop"):
        for workload in (*LAZY, "read"):
            ok, text = ev.faster(_remote(ON, "s3-fsspec", loop=loop), _remote(ON, loop=loop), workload, True)
            results.append(ok)
            texts.append(f"{loop} {text}")
    return _tally(results, texts)


def judge_uvloop(ev: Evidence) -> Verdict:
    results, texts = [], []
    for workload in (*LAZY, "read"):
        c = ev.compare(_remote(ON), _remote(ON, loop="uvloop"), workload, True)
        if c is None:
            continue
        results.append(c.significant and c.ratio < 0.5 + 0.25)  # "about 2x": at least 1.33x faster
        texts.append(f"{workload} {1 / c.ratio:.2f}x (p={c.p_value:.3f})" if c.p_value is not None else workload)
    return _tally(results, texts) if results else Verdict(UNCHECKED, ["not measured"])


NONE_SHARDS, AUTO, GUIDE = P(pipeline="fused", sharding="none"), P(pipeline="fused"), baseline_point("guide-example")


def judge_sharding(ev: Evidence) -> Verdict:
    files = {
        name: (ev.row(p, "write", False) or {}).get("files")
        for name, p in (("unsharded", NONE_SHARDS), ("auto", AUTO), ("guide", GUIDE), ("default", DEFAULT))
    }
    cost = ev.compare(DEFAULT, GUIDE, "write", False)
    texts = [
        f"files: unsharded {files['unsharded']}, auto-sharded {files['auto']}, guide's callback {files['guide']}, "
        f"anndata-default {files['default']}"
    ]
    guide, default = ev.row(GUIDE, "write", False) or {}, ev.row(DEFAULT, "write", False) or {}
    if cost:
        p = f"p={cost.p_value:.3f}" if cost.p_value is not None else "one write: no p"
        texts.append(f"the guide's callback writes {cost.ratio:.2f}x anndata-default's time ({p})")
    elif guide.get("status") == "timeout" and default.get("values"):
        limit = guide.get("error", "").partition("timeout of ")[2].partition("s")[0]
        bound = f" (> {float(limit) / median(default['values']):.0f}x anndata-default's write)" if limit else ""
        texts.append(f"the guide's callback did not finish one write: {guide.get('error')}{bound}")
    fewer = files["unsharded"] and files["auto"] and files["auto"] < files["unsharded"]
    return Verdict(HOLDS if fewer else FAILS, texts)


def judge_zarrs(ev: Evidence) -> Verdict:
    """Each check reads "B faster than A: B's speed-up" (below 1x: B is slower)."""
    checks = []
    for sharding in ("auto", "rows-1024x16"):
        py, zr, fu = (P(pipeline=p, sharding=sharding) for p in ("python", "zarrs", "fused"))
        checks.append(
            (f"{sharding}: zarrs faster to write than zarr-python's Batched pipeline", *ev.faster(py, zr, "write"))
        )
        if ev.fused:  # on an older zarr "zarr-python" is the Batched pipeline: the check above
            checks += [
                (f"{sharding}: zarrs faster to write than Fused", *ev.faster(fu, zr, "write")),
                (f"{sharding}: zarrs faster to read than Fused", *ev.faster(fu, zr, "read")),
            ]
        else:
            checks.append((f"{sharding}: zarrs faster to read than Batched", *ev.faster(py, zr, "read")))
    fused_remote, zarrs_remote = _remote(ON), _remote(P(pipeline="zarrs"))
    ok, text = ev.faster(zarrs_remote, fused_remote, "lazy-random", True)
    checks.append((f"remote: {ev.pipeline(ON)} faster for random rows than zarrs", ok, text))  # zarrs not for remote
    return _tally([ok for _, ok, _ in checks], [f"{what}: {text}" for what, _, text in checks])


ZSTD, BLOSC = P(pipeline="fused"), P(pipeline="fused", codec="blosc-lz4-bitshuffle")


def judge_codecs(ev: Evidence) -> Verdict:
    w_ok, w_text = ev.faster(ZSTD, BLOSC, "write")
    r_ok, r_text = ev.faster(ZSTD, BLOSC, "read")
    sizes = [(ev.row(p, "write", False) or {}).get("bytes") for p in (ZSTD, BLOSC)]
    texts = [f"Blosc lz4 vs zstd ({ev.pipeline(ZSTD)} pipeline): {w_text}, {r_text}"]
    if all(sizes):
        texts.append(
            f"bytes: zstd {sizes[0] / 1e6:.1f} MB, Blosc lz4 {sizes[1] / 1e6:.1f} MB ({sizes[1] / sizes[0]:.2f}x)"
        )
    return _tally([w_ok, r_ok], texts)


ZARRS_WRITTEN, PYTHON_WRITTEN = (
    P(pipeline="zarrs", sharding="rows-1024x16"),
    P(pipeline="python", sharding="rows-1024x16"),
)


def judge_interop(ev: Evidence) -> Verdict:
    texts, unreadable = [], False
    for point in (ZARRS_WRITTEN, PYTHON_WRITTEN):
        row = ev.row(point, "interop", False) or {}
        readers = row.get("readers") or {}
        texts.append(f"written by {point.axis('pipeline')}: " + ", ".join(f"{r} {v}" for r, v in readers.items()))
        unreadable |= any(v != "ok" and not str(v).startswith("unsupported") for v in readers.values())
    if not any(ev.row(p, "interop", False) for p in (ZARRS_WRITTEN, PYTHON_WRITTEN)):
        return Verdict(UNCHECKED, ["not measured"])
    return Verdict(HOLDS if unreadable else FAILS, texts)


def judge_gpu(ev: Evidence) -> Verdict:
    if ev.gpu_reason:
        return Verdict(UNCHECKED, [ev.gpu_reason])
    if not ev.gpu_rows:
        return Verdict(UNCHECKED, ["no `harness gpu` rows in the results directory: run harness gpu first"])
    works = {r["workload"]: r["status"] == "ok" for r in ev.gpu_rows}
    dense = any(ok for w, ok in works.items() if "X_pca" in w)
    sparse = any(ok for w, ok in works.items() if w.endswith(("gpu-read X", "layers/counts")))
    return Verdict(
        HOLDS if dense and not sparse else PART, [f"{w}: {'works' if ok else 'fails'}" for w, ok in works.items()]
    )


STREAMED = P(pipeline="fused", sharding="rows-1024x16")


def judge_async(ev: Evidence) -> Verdict:
    row = ev.row(STREAMED, "stream-async", False) or {}
    if row.get("status") != "ok":
        return Verdict(FAILS, [f"stream-async: {row.get('status', 'not measured')} {row.get('error', '')}"])
    texts = ["stream-async ran on the harness's own event loop (zarr's async API) and every batch read back equal"]
    sync = ev.row(STREAMED, "stream-sync", False) or {}
    if sync.get("status") == "ok":
        c = compared(STREAMED.id, "stream", sync["values"], row["values"])
        texts.append(
            f"epoch: async {_median(row)} s, sync {_median(sync)} s ({1 / c.ratio:.2f}x, "
            f"p={c.p_value if c.p_value is None else round(c.p_value, 3)})"
        )
    return Verdict(HOLDS, texts)


def _median(row: dict) -> str:
    values = sorted(row.get("values") or [])
    return f"{values[len(values) // 2]:.3f}" if values else "n/a"


CLAIMS = (
    Claim(
        "a",
        "the v3 format is faster than v2 for anndata, locally and remotely",
        (Need((DEFAULT, V2), LOCAL), Need((_remote(DEFAULT), _remote(V2)), LAZY, remote=True)),
        judge_v3,
    ),
    Claim(
        "b",
        "without consolidated metadata remote read_lazy is much slower and may not read fully; it goes "
        "stale when the structure changes",
        (
            Need((_remote(ON), _remote(OFF)), ("lazy-open", "lazy-rows"), True),
            Need((_remote(OFF, "http-obstore"),), ("lazy-open",), True),
        ),
        judge_consolidated,
    ),
    Claim(
        "c",
        "obstore is faster than fsspec out of the box, also with uvloop",
        (
            Need(
                tuple(_remote(ON, s, loop=lp) for s in ("s3-fsspec", "s3-obstore") for lp in ("asyncio", "uvloop")),
                (*LAZY, "read"),
                True,
            ),
        ),
        judge_obstore,
    ),
    Claim(
        "d",
        "uvloop is about 2x faster than asyncio's loop",
        (Need(tuple(_remote(ON, loop=lp) for lp in ("asyncio", "uvloop")), (*LAZY, "read"), True),),
        judge_uvloop,
    ),
    Claim(
        "e",
        "sharding cures the many-small-files problem (and what the guide's callback costs)",
        (Need((NONE_SHARDS, AUTO, DEFAULT), ("write",)), Need((GUIDE,), ("write",), most_repeats=1)),
        judge_sharding,
    ),
    Claim(
        "f",
        "zarr-python is slow for sharded and full writes; zarrs speeds up writing and sharding and modestly "
        "reading; it suits full writes and contiguous reads, not remote stores or random indexing",
        (
            Need(
                tuple(
                    P(pipeline=p, sharding=s) for p in ("python", "fused", "zarrs") for s in ("auto", "rows-1024x16")
                ),
                ("write", "read"),
            ),
            Need((_remote(ON), _remote(P(pipeline="zarrs"))), ("lazy-random",), True),
        ),
        judge_zarrs,
    ),
    Claim(
        "g",
        "zstd, the v3 default, is slower than Blosc (with the size each costs)",
        (Need((ZSTD, BLOSC), ("write", "read")),),
        judge_codecs,
    ),
    Claim(
        "h",
        "zstd written by another implementation (zarrs) cannot be read by zarr's default pipeline (numcodecs#424)",
        (Need((ZARRS_WRITTEN, PYTHON_WRITTEN), ("write",), readers=("python", "fused", "zarrs", "read_zarr")),),
        judge_interop,
    ),
    Claim(
        "i",
        "GPU: enable_gpu with read_elem may work for dense data, not for sparse matrices or dataframes",
        (),
        judge_gpu,
    ),
    Claim(
        "j",
        "zarr's async API lets a reader stream without zarr's own event loop",
        (Need((STREAMED,), ("stream-async", "stream-sync")),),
        judge_async,
    ),
)
