"""Report and compare on a saved result file (tests/data), no measuring."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from harness.analysis import compare, report, results, tables
from harness.errors import HarnessError

DATA = Path(__file__).parent / "data" / "results-pbmc68k.jsonl"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    shutil.copy(DATA, results.results_file(tmp_path))
    return tmp_path


def test_report_renders_table_and_valid_figures(results_dir: Path, tmp_path: Path) -> None:
    md = report.build(
        results_dir, tmp_path / "rep", recommended="local/asyncio/zarrs/blosc-lz4-bitshuffle/auto/cons-on"
    )
    text = md.read_text()
    points = {json.loads(line)["point_id"] for line in DATA.read_text().splitlines()}
    table_rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert {row.split("`")[1] for row in table_rows} == points
    assert "(1.00x)" in text  # anndata-default against itself
    for name in ("heatmap-write.png", "speedup.png", "pareto.png", "files.png"):
        assert (tmp_path / "rep" / name).read_bytes()[:8] == PNG and f"]({name})" in text
    assert "Remote stores x event loop" in text and "skipped for lack of data" in text
    assert "<img" in (tmp_path / "rep" / "index.html").read_text()


def test_old_schema_rows_are_skipped_and_said(results_dir: Path, tmp_path: Path) -> None:
    with open(results.results_file(results_dir), "a") as fh:
        fh.write(json.dumps({"schema": 0, "point_id": "x"}) + "\n")
    text = report.build(results_dir, tmp_path / "rep").read_text()
    assert "1 rows of an older or unknown schema were skipped" in text


def test_missing_or_empty_results_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no results file"):
        report.build(tmp_path / "nothing", tmp_path / "rep")
    results.results_file(tmp_path).write_text("")
    with pytest.raises(HarnessError, match="has no rows of schema"):
        report.build(tmp_path, tmp_path / "rep")


def test_mixed_provenance_is_reported(results_dir: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    rows[0]["provenance"]["cpu"] = "Another CPU"
    results.results_file(results_dir).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert "different machines" in report.build(results_dir, tmp_path / "rep").read_text()


def test_significance_on_constructed_samples() -> None:
    same = [1.0, 1.01, 0.99, 1.02, 0.98]

    def verdict(a, b):
        return compare.compared("p", "w", a, b)

    assert verdict(same, [1.0, 0.99, 1.01, 1.0, 1.02]).verdict == "not significant"
    slower = verdict(same, [2.0, 2.02, 1.98, 2.01, 1.99])
    assert slower.p_value < 0.05 and slower.significant and slower.verdict == "B 2.00x slower"
    faster = verdict(same, [0.5, 0.51, 0.49, 0.5, 0.5])
    assert faster.significant and faster.ratio < 1 and faster.verdict == "B 2.00x faster"
    few = verdict([1.0, 1.1], [2.0, 2.1])
    assert few.p_value is None and not few.significant and few.verdict == "too few repeats"


def test_a_slowdown_is_judged_on_the_pairs_own_rounds() -> None:
    from harness.analysis.stats import block_slower_p, mann_whitney, paired_slowdown

    drift = [1.0, 1.4, 0.8, 1.25, 0.9]  # the host's pace per round, shared by every point in it
    default = [d * o for d, o in zip(drift, [1.0, 1.01, 0.99, 1.0, 1.01])]
    slow = [d * o * 1.25 for d, o in zip(drift, [1.01, 0.99, 1.0, 1.02, 0.99])]  # 0.8x the default, every round
    bit = [d * o * 1.05 for d, o in zip(drift, [1.01, 0.99, 1.0, 1.02, 0.99])]  # 0.95x: within a 1.1 margin
    ratio, p = paired_slowdown(slow, default, 1.1)
    assert ratio == pytest.approx(0.8, abs=0.02) and p < 0.01 and mann_whitney(default, slow) > 0.05  # drift hides it
    assert paired_slowdown(bit, default, 1.1) is None and paired_slowdown(bit, default, 1.0) is not None
    assert paired_slowdown(default, slow, 1.1) is None  # faster: never a slowdown
    assert paired_slowdown(slow[:2], default, 1.1) is not None  # raced out after two rounds: those two, paired
    assert paired_slowdown(slow[:1], default, 1.1) is None  # one round: nothing to judge by
    assert paired_slowdown(slow, default, math.inf) is None  # --max-slowdown none
    # a third point that is erratic in these rounds does not hide the pair's slowdown, as pooling its noise would
    erratic = [d * o for d, o in zip(drift, [1.0, 1.8, 1.0, 1.9, 1.0])]
    pooled = block_slower_p({"default": default, "slow": slow, "erratic": erratic}, "slow", "default")
    assert pooled > 0.05 and paired_slowdown(slow, default, 1.1)[1] < 0.05


def test_the_block_test_cancels_the_drift_of_rounds_and_needs_two() -> None:
    from harness.analysis.stats import block_noise, block_slower_p, slower_p

    drift = [1.0, 1.3, 0.8]  # each round shared by every point in it
    own = {"a": [1.0, 1.01, 0.99], "b": [1.01, 0.99, 1.0], "c": [0.99, 1.0, 1.01], "slow": [1.05, 1.04, 1.06]}
    rounds = {k: [d * o for d, o in zip(drift, v)] for k, v in own.items()}  # slow: 5% slower, noise of its own
    assert block_slower_p(rounds, "slow", "a") < 0.05 < slower_p(rounds["slow"], rounds["a"])  # Welch sees the drift
    assert block_slower_p(rounds, "a", "slow") > 0.5 and block_slower_p(rounds, "b", "a") > 0.05
    assert block_slower_p(rounds, "slow", "a", margin=1.1) > 0.5  # 5% slower: not by more than 10%
    assert block_slower_p(rounds, "slow", "a", margin=1.02) < 0.05  # but by more than 2%
    assert slower_p([2.2, 2.3, 2.25], [1.0, 1.05, 1.02], margin=2.0) < 0.05 < slower_p([2.2], [1.0], margin=2.0)
    assert slower_p([2.2, 2.3, 2.25], [1.0, 1.05, 1.02], margin=2.5) > 0.5  # 2.2x slower: not by more than 2.5x
    variance, df = block_noise(rounds)
    assert df == 3 * 2 and 0 < variance < 0.02**2  # the points' own 1-2 %, not the rounds' 30 %
    assert block_noise({**rounds, "twin": list(rounds["a"])}) == (variance, df)  # one measurement counts once
    first = {k: v[:1] for k, v in rounds.items()}
    assert block_noise(first) is None and block_slower_p(first, "slow", "a") == 1.0  # no noise to measure yet


def test_compare_refuses_other_machines_unless_forced(results_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    for r in rows:
        r["provenance"]["cpu"] = "Another CPU"
    results.results_file(other).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(HarnessError, match="different machines"):
        compare.compare(results_dir, other)
    pairs, warnings = compare.compare(results_dir, other, force=True)
    assert warnings and warnings[0].startswith("FORCED") and pairs
    assert all(c.verdict == "not significant" and c.ratio == 1.0 for c in pairs)


def test_asv_suites_pass_asv_check() -> None:
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "asv", "check", "--python=same"], cwd=root, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def test_unstable_measurements_are_flagged_with_advice(results_dir: Path) -> None:
    import pandas as pd

    df = results.load(results_dir)
    flagged = tables.unstable(df)
    latest = tables.latest(df)
    ok = latest[latest["status"] == "ok"]
    assert len(flagged) == int((ok["iqr"] > 0.10 * ok["median"]).sum())
    wild = pd.concat([df, df.iloc[[0]].assign(run_id="zzz", values=[[1.0, 2.0, 3.0, 4.0]], median=2.5, iqr=1.5)])
    assert any("more --repeats" in w and "60%" in w for w in tables.unstable(wild))


def _remote_rows() -> list[dict]:
    """Rows shaped like a remote sweep's: two clients x consolidated, one baseline, at 20 ms."""
    template = json.loads(DATA.read_text().splitlines()[0])
    rows = []
    timings = {
        ("s3-fsspec", "on"): 2.0,
        ("s3-obstore", "on"): 1.0,
        ("s3-fsspec", "off"): 2.6,
        ("s3-obstore", "off"): 1.3,
    }
    for (store, cons), seconds in timings.items():
        point = {
            "store": store,
            "loop": "asyncio",
            "pipeline": "fused",
            "codec": "zstd-0",
            "sharding": "auto",
            "consolidated": cons,
            "baseline": "",
        }
        pid = f"{store}/asyncio/fused/zstd-0/auto/cons-{cons}"
        rows.append(
            {
                **template,
                "key": pid,
                "point_id": pid,
                "point": point,
                "workload": "stream-async",
                "status": "ok",
                "values": [seconds * (1 + 0.01 * i) for i in range(5)],
                "network": {"condition": "latency=20ms"},
                "requests": {"requests": [100] * 5, "repeated": [7] * 5, "bytes": [5e6] * 5},
                "metrics": {"rows_per_s": [1000 / seconds] * 5, "first_batch_s": [0.05] * 5},
            }
        )
    base = {**rows[0]["point"], "baseline": "anndata-default", "store": "s3-obstore"}
    rows.append(
        {
            **rows[1],
            "key": "b",
            "point_id": "anndata-default@s3-obstore/asyncio",
            "point": base,
            "values": [4.0, 4.1, 4.0, 3.9, 4.0],
        }
    )
    return rows


def test_remote_report_shows_requests_effects_and_a_remote_reference(tmp_path: Path) -> None:
    path = results.results_file(tmp_path)
    path.write_text("".join(json.dumps(r) + "\n" for r in _remote_rows()))
    text = report.build(tmp_path, tmp_path / "rep").read_text()
    assert "## Remote requests" in text and "| 100 | 7 | 5.0 | 1,000 | 0.050 |" in text
    assert "`s3-obstore/asyncio/fused/zstd-0/auto/cons-on (latency=20ms)`" in text
    # against anndata-default on the same remote store (or protocol) and network, not a local one
    assert "1.020 ±0.020 (3.92x)" in text and "2.040 ±0.040 (1.96x)" in text
    effects = [line for line in text.splitlines() if line.startswith("| store: fsspec->obstore")]
    assert len(effects) == 2 and all("B 2.00x faster" in e for e in effects)
    assert any(line.startswith("| consolidated: off->on") and "B 1.30x faster" in line for line in text.splitlines())
    assert (tmp_path / "rep" / "remote.png").read_bytes()[:8] == PNG


def test_effects_need_enough_repeats_and_a_real_difference(tmp_path: Path) -> None:
    rows = _remote_rows()[:2]
    rows[1]["values"] = [2.0 * (1 + 0.01 * i) for i in range(5)][::-1]  # obstore now as fast as fsspec
    path = results.results_file(tmp_path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (found,) = compare.axis_effects(results.load(tmp_path))
    assert found.verdict == "not significant" and found.p_value > 0.5
    rows[1]["values"] = rows[1]["values"][:2]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (found,) = compare.axis_effects(results.load(tmp_path))
    assert found.verdict == "too few repeats"


def test_one_results_directory_with_several_datasets_shows_each(results_dir: Path) -> None:
    """A scale run puts 10k, 100k and 1m in one directory: the table labels each point with its dataset."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    other = [
        {**r, "key": r["key"] + "-big", "dataset": {**r["dataset"], "name": "big", "fingerprint": "f" * 16}}
        for r in rows
    ]
    with results.results_file(results_dir).open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in other)
    df = tables.with_speedup(tables.latest(results.load(results_dir)))
    labels = [line["point"] for line in tables.point_lines(df, ["write", "read"])]
    assert len(labels) == 2 * len({r["point_id"] for r in rows})
    assert any(label.endswith(" [big]") for label in labels) and any(label.endswith(" [pbmc68k]") for label in labels)
    tables.summary_table(results.load(results_dir))  # used to fail: several rows per (point, workload)


def test_compare_across_stacks_says_so_without_refusing(results_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    for r in rows:
        r["provenance"]["packages"] = {**r["provenance"]["packages"], "zarr": "3.2.1"}
        r["stack_key"] = "another-stack"
    results.results_file(other).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pairs, warnings = compare.compare(results_dir, other)
    assert pairs and any("different stacks" in w and "zarr 3.2.1" in w for w in warnings)


def test_loader_table_sets_each_loader_beside_annbatch_per_setting() -> None:
    """One line per (setting, point, workload); ours says its ratio to annbatch's Loader on the same store and
    setting (another R is another setting, never mixed), with a Mann-Whitney p."""

    def row(workload: str, cells: list[float], run_rows: int, point: str = "annbatch+zarrs") -> dict:
        metrics = {
            "cells_per_s": cells,
            "first_batch_s": [0.1] * len(cells),
            "p50_batch_s": [0.05] * len(cells),
            "p99_batch_s": [0.2] * len(cells),
            "procs": [1.0] * len(cells),
        }
        spec = {"batch_size": 4096, "run_rows": run_rows, "preload": 64, "procs": 1}
        return {
            "point_id": point,
            "workload": workload,
            "status": "ok",
            "metrics": metrics,
            "loader": spec,
            "dataset": {"name": "100k"},
            "run_id": "1",
        }

    rows = [
        row("stream-blocks", [50e3, 51e3, 52e3, 50.5e3, 51.5e3], 64),
        row("stream-annbatch", [40e3, 41e3, 40.5e3, 39e3, 40.2e3], 64),
        row("stream-blocks", [30e3, 30.5e3, 29e3, 31e3, 30.2e3], 512),  # no annbatch row at R = 512
    ]
    md = tables.loader_markdown(rows)
    ours64 = next(line for line in md if "64 x 64, 4096" in line and "stream-blocks" in line)
    assert "| 51,000 ±1,000 |" in ours64 and "1.27x (p=0.008)" in ours64  # 51,000 / 40,200
    ours512 = next(line for line in md if "512 x 64, 4096" in line)
    assert ours512.rstrip().endswith("| – |")
    assert sum("stream-annbatch" in line for line in md) == 1
