"""One error hierarchy, so the CLI can print one line and asv/pytest can skip cleanly.

The runtime's errors are defined in `harness.runtime.errors` (production code meets them without the
rest of the harness); the measurement-only ones are defined here.
"""

from __future__ import annotations

from .runtime.errors import HarnessError, UnsupportedPoint, one_line

__all__ = ["HarnessError", "UnsupportedPoint", "VerificationError", "one_line"]


class VerificationError(HarnessError):
    """What a workload read back does not equal the source: the point is failed, never timed."""
