"""harness claims and --stack: verdicts from real measurements on tiny data; stacks parsed once, errors clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zarr

from harness import cli
from harness.analysis import results, tables
from harness.analysis.compare import compared
from harness.claims import ClaimsRequest, run
from harness.claims.catalog import (
    CLAIMS,
    FAILS,
    HOLDS,
    PART,
    UNCHECKED,
    Evidence,
    judge_codecs,
    judge_sharding,
    judge_zarrs,
    on_stack,
)
from harness.errors import HarnessError
from harness.matrix import Point, baseline_point
from harness.measure.stacks import Stack

VERDICTS = {HOLDS, FAILS, PART, UNCHECKED}


def test_v2_baseline_writes_zarr_format_2_and_reads_back(tiny_adata, tmp_path: Path) -> None:
    import anndata as ad
    import numpy as np

    cfg = baseline_point("anndata-default-v2").config
    cfg.write(tiny_adata, tmp_path / "v2.zarr")
    assert zarr.open_group(tmp_path / "v2.zarr", mode="r").metadata.zarr_format == 2
    back = cfg.read(tmp_path / "v2.zarr")
    assert np.array_equal(back.X.toarray(), tiny_adata.X.toarray())
    assert ad.settings.zarr_write_format == 3  # the override does not leak


def test_v2_needs_anndata_api() -> None:
    from harness.runtime import IOConfig

    with pytest.raises(HarnessError, match="zarr format 2.*api=anndata"):
        IOConfig(api="dispatched", zarr_format=2)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("", "at least one requirement"), ("zarr===,", "not a requirement"), ("zarr>=3 zarrs", "not a requirement")],
)
def test_stack_parse_errors_are_one_line(text: str, needle: str) -> None:
    with pytest.raises(HarnessError, match=needle):
        Stack.parse(text)


def test_stack_key_is_stable_and_label_round_trips() -> None:
    a, b = Stack.parse("zarr==3.2.*, zarrs==0.2.1"), Stack.parse("zarr==3.2.*,zarrs==0.2.1")
    assert a == b and a.key == b.key and a.label == "zarr==3.2.*,zarrs==0.2.1"
    assert Stack.parse("zarr==3.1.*").key != a.key


def test_unresolvable_stack_is_one_clear_line(capsys, tiny_h5ad: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # resolve offline: a version that cannot exist fails fast
    argv = ["run", "--dataset", str(tiny_h5ad), "--results", str(tmp_path / "r"), "--stack", "zarr==0.0.1"]
    assert cli.main([*argv, "--workloads", "write", "--repeats", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the stack zarr==0.0.1 does not install here" in err[0]


def test_unknown_claim_is_refused(capsys, tiny_h5ad: Path) -> None:
    assert cli.main(["claims", "--dataset", str(tiny_h5ad), "--claims", "a,z"]) == 2
    assert "unknown claim 'z'" in capsys.readouterr().err


def test_local_claims_on_tiny_data(tiny_h5ad: Path, tmp_path: Path) -> None:
    request = ClaimsRequest(
        dataset=str(tiny_h5ad),
        results=tmp_path,
        repeats=3,
        progress=False,
        keys=("a", "e", "g", "h", "i", "j"),
        local_only=True,
        timeout=300,
    )
    found = dict((c.key, v) for c, v in run(request, log=lambda *_: None))
    assert set(found) == {"a", "e", "g", "h", "i", "j"}
    assert all(v.verdict in VERDICTS and v.evidence for v in found.values())
    # e: file counts come from real writes (80 cells fit one chunk per array: sharding saves no files here)
    assert "files: unsharded" in found["e"].evidence[0] and "None" not in found["e"].evidence[0]
    assert "guide's callback writes" in found["e"].evidence[1]
    # h: on this stack every reader reads what zarrs and zarr-python wrote, so the claim does not hold here
    assert found["h"].verdict == FAILS and any("zarrs" in t for t in found["h"].evidence)
    assert found["i"].verdict == UNCHECKED  # no CUDA here (or no gpu rows)
    assert found["j"].verdict == HOLDS
    # a: the local v3 vs v2 comparisons were measured (the remote ones are not, with --local-only)
    assert not any("not measured" in t for t in found["a"].evidence if not t.startswith("remote"))
    assert any(t.startswith("remote") and "not measured" in t for t in found["a"].evidence)
    rows = [r for r in results.iter_rows(tmp_path) if r.get("kind") == "claim"]
    assert {r["workload"] for r in rows} == {f"claim {k}" for k in found}
    assert all("zarr " in r["stack"] and "anndata " in r["stack"] for r in rows)
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert [c["claim"] for c in saved] == ["a", "e", "g", "h", "i", "j"]
    table = "\n".join(tables.claims_markdown(list(results.iter_rows(tmp_path))))
    assert "| a. " in table and found["a"].verdict in table

    # rows measured before are reused: a second run measures nothing new
    before = sum(1 for r in results.iter_rows(tmp_path) if r.get("kind") not in ("claim",))
    run(ClaimsRequest(**{**request.__dict__, "keys": ("e",)}), log=lambda *_: None)
    after = sum(1 for r in results.iter_rows(tmp_path) if r.get("kind") not in ("claim",))
    assert after == before


def test_every_claim_has_a_quote_and_distinct_key() -> None:
    keys = [c.key for c in CLAIMS]
    assert keys == sorted(set(keys)) and keys == list("abcdefghij")
    assert all(c.quote and callable(c.judge) for c in CLAIMS)


def test_an_older_zarr_is_judged_on_its_own_zarr_python_pipeline() -> None:
    """zarr < 3.3 has no Fused pipeline: a Fused point is measured and judged on the Batched one, and a
    check nobody measured (the remote half with --local-only) is left out instead of counting against."""
    fused = Point.of(pipeline="fused", codec="blosc-lz4-bitshuffle")
    assert on_stack(fused, True) is fused
    assert on_stack(fused, False).axis("pipeline") == "python" and on_stack(fused, False).axis("codec") == fused.axis(
        "codec"
    )
    assert on_stack(baseline_point("anndata-default"), False) == baseline_point("anndata-default")
    times = {"python": [4.0, 4.1, 4.2, 4.05, 4.15], "zarrs": [2.0, 2.1, 2.2, 2.05, 2.15]}
    rows: dict = {}

    def row(point, workload, remote):
        if remote or point.axis("pipeline") not in times:
            return None  # nothing remote, nothing on Fused: the older stack, --local-only
        values = times[point.axis("pipeline")]
        if point.axis("codec") != "zstd-0":
            values = [v / 2 for v in values]
        return rows.setdefault((point.id, workload), {"status": "ok", "values": values, "bytes": 100})

    def compare(a, b, workload, remote):
        ra, rb = row(a, workload, remote), row(b, workload, remote)
        return compared(b.id, workload, ra["values"], rb["values"]) if ra and rb else None

    old = Evidence(compare, row, [], "no CUDA", fused=False)
    codecs = judge_codecs(old)
    assert codecs.verdict == HOLDS and "(python pipeline)" in codecs.evidence[0]
    zarrs = judge_zarrs(old)
    assert zarrs.verdict == HOLDS, zarrs.evidence  # the unmeasured remote check does not turn it into "in part"
    assert any("zarrs faster to read than Batched" in t for t in zarrs.evidence)
    assert any("remote" in t and "not measured" in t for t in zarrs.evidence)
    assert judge_codecs(Evidence(lambda *a: None, lambda *a: None, [], None)).verdict == UNCHECKED


def test_a_guide_write_that_times_out_is_a_lower_bound_on_its_cost() -> None:
    rows = {
        "guide-example": {"status": "timeout", "error": "point exceeded the timeout of 1800s and was killed"},
        "anndata-default": {"status": "ok", "values": [18.0, 19.0, 20.0], "files": 75},
    }

    def row(point, workload, remote):
        return rows.get(
            point.id, {"status": "ok", "values": [1.0, 1.0, 1.0], "files": 75 if "auto" in point.id else 900}
        )

    def compare(a, b, workload, remote):
        ra, rb = row(a, workload, remote), row(b, workload, remote)
        return compared(b.id, workload, ra["values"], rb["values"]) if ra.get("values") and rb.get("values") else None

    found = judge_sharding(Evidence(compare, row, [], None))
    assert found.verdict == HOLDS and "did not finish one write" in found.evidence[1] and "> 95x" in found.evidence[1]
