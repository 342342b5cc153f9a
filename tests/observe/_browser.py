"""A real headless Chromium for the report tests: find it, install it if missing, run it.

Chromium is driven with its command-line modes only: ``--dump-dom`` (the DOM after
the page's scripts ran) and ``--screenshot``. The page records script errors and
``console.error`` calls on ``<html data-errors=...>`` and in ``#errors``, so the DOM dump
tells whether it loaded cleanly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _find() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _install() -> str:
    """Install Debian's chromium package; returns why not if that is impossible."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine to install chromium"
    if os.geteuid() != 0:
        return "chromium is missing and installing it needs root (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {result.stderr.strip()[-300:]}"
    return ""


def chromium() -> str:
    """The chromium executable; installs it when missing, or skips the test saying why it cannot."""
    found = _find()
    if found is None:
        problem = _install()
        found = _find()
        if found is None:
            pytest.skip(f"headless Chromium unavailable: {problem or 'installed, but not on PATH'}")
    return found


def _run(args: list[str], timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="taskrun-chromium-") as profile:
        command = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                   "--disable-extensions", "--disable-background-networking", "--disable-sync",
                   "--no-default-browser-check", f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HOME": profile})


def dump_dom(url: str) -> str:
    """The serialised DOM of ``url`` once its scripts have run."""
    result = _run(["--virtual-time-budget=3000", "--dump-dom", url])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


def screenshot(url: str, target: Path, size: tuple[int, int] = (1280, 900)) -> Path:
    """Save a PNG of ``url`` to ``target``; returns it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    result = _run(["--hide-scrollbars", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=3000",
                   f"--screenshot={target}", url])
    assert result.returncode == 0 and target.exists(), result.stderr[-2000:]
    return target
