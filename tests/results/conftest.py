from __future__ import annotations

import pathlib

import pytest


@pytest.fixture
def home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A fresh TASKRUN_HOME for the test."""
    monkeypatch.setenv("TASKRUN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TASKRUN_REFRESH_CACHE", raising=False)
    return tmp_path / "home"
