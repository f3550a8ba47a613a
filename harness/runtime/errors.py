"""The errors a production user of the runtime can meet; the rest of the harness builds on them."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


class UnsupportedPoint(HarnessError, NotImplementedError):
    """This configuration cannot run on this machine or stack (asv treats NotImplementedError as skip)."""


def one_line(exc: BaseException) -> str:
    """`Type: message`, first line only: how every caught error is written into results and messages."""
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text.strip() else type(exc).__name__
