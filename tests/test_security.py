"""Servers listen on loopback only; secrets never reach results or reports; text from result files is
escaped and never executed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psutil
import pytest

from harness.analysis import report, results
from harness.cli import main
from harness.matrix import Point
from harness.measure import servers
from harness.measure.runner import Sweep, run_sweep

DATA = Path(__file__).parent / "data" / "results-pbmc68k.jsonl"


def _listening(server: servers.Server) -> set[str]:
    pids = {server.process.pid, *(c.process.pid for c in server.children)}
    pids |= {p.pid for pid in list(pids) for p in psutil.Process(pid).children(recursive=True)}
    return {c.laddr.ip for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in pids}


needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed"
)


@needs_nginx
def test_servers_listen_on_loopback_only(tmp_path: Path) -> None:
    with servers.start_s3() as s3, servers.start_http(tmp_path) as http:
        assert _listening(s3) == {"127.0.0.1"} and _listening(http) == {"127.0.0.1"}


@needs_nginx
def test_secrets_in_the_environment_never_reach_results_or_reports(
    tiny_h5ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local and a remote (S3) point: the S3 workers get credentials, and neither those nor the user's reach a file."""
    marker = "very-secret-4f1c"
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HARNESS_TOKEN"):
        monkeypatch.setenv(name, marker)
    run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=[Point.of(pipeline="fused"), Point.of(store="s3-obstore", pipeline="fused")],
            workloads=["write", "read"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path / "res",
            workdir=tmp_path / "work",
            progress=False,
        )
    )
    report.build(tmp_path / "res", tmp_path / "rep")
    written = [p for p in (tmp_path / "res").rglob("*") if p.is_file()] + [
        p for p in (tmp_path / "rep").rglob("*") if p.is_file()
    ]
    rows = list(results.iter_rows(tmp_path / "res"))
    assert {(r["point"]["store"], r["status"]) for r in rows} == {("local", "ok"), ("s3-obstore", "ok")}, rows
    for secret in (marker, servers.S3_SECRET):
        assert written and not any(secret.encode() in p.read_bytes() for p in written), secret


def test_text_from_result_files_is_escaped_and_never_executed(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    row = json.loads(DATA.read_text().splitlines()[0])
    row.update(
        point_id="<script>alert(1)</script>",
        status="failed",
        error=f"$(touch {pwned}); `touch {pwned}`",
        dataset={**row["dataset"], "path": f"; touch {pwned}"},
    )
    results.results_file(tmp_path).write_text(json.dumps(row) + "\n")
    report.build(tmp_path, tmp_path / "rep")
    assert main(["show", "--results", str(tmp_path)]) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not pwned.exists()
