"""The console's assets ship with the package: every one the gateway serves is tracked by git.

A clean clone once served ``/console`` as a 500 because ``.gitignore`` swallowed
``console.html``; the browser tests only saw it on CI. This checks the same thing in a second.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway.console import ASSETS, asset

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_every_served_asset_is_tracked_and_readable(name: str) -> None:
    path = f"gateway/console/static/{name}"
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, check=False,
    )
    assert tracked.returncode == 0, f"{path} is not tracked by git (check .gitignore)"
    assert asset(name), f"{name} is empty"


def test_an_unknown_asset_is_refused() -> None:
    with pytest.raises(KeyError):
        asset("../settings.py")
