"""Stale consolidated metadata is detected (an obs column removed after writing) and fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.matrix import baseline_point
from harness.measure import context
from harness.runtime import consolidated


@pytest.fixture
def written(tiny_adata, tmp_path: Path) -> Path:
    point = baseline_point("anndata-default")
    ctx = context.Context(point, tiny_adata, tmp_path)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    return ctx.on_disk


def _drop_obs_column(store: Path, column: str) -> None:
    """What a user does by hand: delete the column's node and its name from obs' column-order."""
    import shutil

    shutil.rmtree(store / "obs" / column)
    meta_path = store / "obs" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["column-order"].remove(column)
    meta_path.write_text(json.dumps(meta))


def test_fresh_store_passes(written: Path, capsys: pytest.CaptureFixture) -> None:
    found = consolidated.check(written)
    assert found.consolidated and not found.stale and found.nodes > 10
    assert main(["check-store", str(written)]) == 0
    assert "matches all" in capsys.readouterr().out


def test_removed_column_is_detected_and_fixed(written: Path, capsys: pytest.CaptureFixture) -> None:
    _drop_obs_column(written, "batch")
    found = consolidated.check(written)
    assert (
        found.missing == ["obs/batch", "obs/batch/categories", "obs/batch/codes"]
        and found.changed == ["obs"]
        and found.stale
    )
    assert main(["check-store", str(written)]) == 1
    out = capsys.readouterr().out
    assert "STALE" in out and "obs/batch" in out and "zarr.consolidate_metadata" in out
    assert main(["check-store", str(written), "--fix"]) == 0
    assert not consolidated.check(written).stale


def test_node_added_after_consolidation_is_detected(written: Path) -> None:
    import zarr

    zarr.open_group(written, mode="a", use_consolidated=False).create_array("uns/late", shape=(3,), dtype="i4")
    assert consolidated.check(written).unlisted == ["uns/late"]


def test_store_without_consolidated_metadata_says_so(tiny_adata, tmp_path: Path) -> None:
    import zarr

    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    found = consolidated.check(tmp_path / "plain.zarr")
    assert not found.consolidated and "no consolidated metadata" in found.message()


def test_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="cannot open"):
        consolidated.check(tmp_path / "nothing.zarr")
