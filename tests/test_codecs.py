from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.runtime.codecs import all_codec_names, parse_codec


def test_every_named_codec_builds_a_zarr_compressor() -> None:
    for name in all_codec_names():
        spec = parse_codec(name)
        built = spec.build()
        assert (built is None) == (name == "none")


def test_zstd_checksum_and_blosc_shuffle_are_parsed() -> None:
    spec = parse_codec("zstd-3-checksum")
    assert (spec.level, spec.checksum) == (3, True)
    (codec,) = spec.build()
    assert codec.level == 3 and codec.checksum is True
    blosc = parse_codec("blosc-zstd-noshuffle")
    assert (blosc.cname, blosc.shuffle) == ("zstd", "noshuffle")


def test_unknown_codec_lists_the_valid_forms() -> None:
    with pytest.raises(HarnessError, match="valid: none, zstd"):
        parse_codec("gzip-5")
