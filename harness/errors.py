"""One error hierarchy, so the CLI can print one line and asv/pytest can skip cleanly."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


class UnsupportedPoint(HarnessError, NotImplementedError):
    """This combination cannot run on this machine or stack (asv treats NotImplementedError as skip)."""


class InvalidPoint(HarnessError, ValueError):
    """This combination makes no sense (e.g. h5ad on an object store)."""


class VerificationError(HarnessError):
    """What a workload read back does not equal the source: the point is failed, never timed."""
