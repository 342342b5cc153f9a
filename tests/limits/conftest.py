from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrun._limits import _machine
from taskrun._limits._registry import REGISTRY


@pytest.fixture(autouse=True)
def isolated_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own TASKRUN_HOME, no TASKRUN_LIMITS and no set() definitions."""
    home = tmp_path / "home"
    monkeypatch.setenv("TASKRUN_HOME", str(home))
    monkeypatch.delenv("TASKRUN_LIMITS", raising=False)
    monkeypatch.delenv("TASKRUN_LIMITS_LEASE_TTL", raising=False)
    REGISTRY.install({})
    REGISTRY.reload()
    yield home
    REGISTRY.install({})
    monkeypatch.undo()
    REGISTRY.reload()
    _machine.close_connections()
