"""Stacks as an axis: the same points measured under another set of package versions.

`--stack "zarr==3.2.*,zarrs==0.2.1"` builds a virtual environment with that stack and the harness in it
(cached by the stack's text under HARNESS_STACKS_DIR, default ~/.cache/harness/stacks), and the workers run
in its interpreter; every row then carries that stack's package versions (read in that environment), so
`harness compare` and `harness claims` can say whether a verdict still holds after an upgrade.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]  # the checkout the harness runs from
#: What the workers need besides the stack: the measuring side and the optional packages points may ask for.
EXTRAS = "bench,obstore,zarrs,uvloop"


@dataclass(frozen=True)
class Stack:
    """A parsed `--stack`: requirement specifiers, in the order given."""

    requirements: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Stack:
        from packaging.requirements import InvalidRequirement, Requirement

        parts = tuple(p.strip() for p in text.split(",") if p.strip())
        if not parts:
            raise HarnessError("--stack needs at least one requirement, e.g. 'zarr==3.2.*,zarrs==0.2.1'")
        for part in parts:
            try:
                Requirement(part)
            except InvalidRequirement:
                raise HarnessError(
                    f"--stack: {part!r} is not a requirement (name and version, e.g. zarr==3.2.*)"
                ) from None
        return cls(parts)

    @property
    def key(self) -> str:
        return hashlib.sha256(" ".join(self.requirements).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return ",".join(self.requirements)


def stacks_dir() -> Path:
    return Path(os.environ.get("HARNESS_STACKS_DIR") or Path.home() / ".cache" / "harness" / "stacks")


def ensure(stack: Stack, log=print) -> Path:
    """The interpreter of a virtual environment with `stack` and the harness (built once, then reused)."""
    home = stacks_dir() / stack.key
    python = home / "bin" / "python"
    done = home / "harness-stack.json"
    if python.exists() and done.exists():
        return python
    log(f"building the stack {stack.label} in {home} (once)")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(home)], check=True, capture_output=True)
    install = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        f"{ROOT}[{EXTRAS}]",
        *stack.requirements,
    ]
    found = subprocess.run(install, capture_output=True, text=True)
    if found.returncode != 0:
        tail = " ".join((found.stderr or found.stdout).strip().splitlines()[-3:])[:600]
        raise HarnessError(f"the stack {stack.label} does not install here: {tail}")
    done.write_text(json.dumps({"stack": stack.requirements, "packages": packages(python)}))
    return python


@functools.cache
def packages(python: Path) -> dict[str, Any]:
    """Package versions and Python version as that interpreter sees them (what its rows carry); asked
    once per interpreter and process (`harness claims` asks before its sweeps, and every sweep again)."""
    code = (
        "import json, platform; from harness.measure.provenance import package_versions; "
        "print(json.dumps({'packages': package_versions(), 'python': platform.python_version()}))"
    )
    found = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(found.stdout.strip().splitlines()[-1])
