"""Shared helpers of the reliability tests: bounded waits, so a hang fails fast."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def within(seconds: float, fn: Callable[[], Any], what: str) -> Any:
    """Call ``fn`` on a helper thread; fail if it has not returned after ``seconds``."""
    box: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # handed back to the test thread
            box.append((False, exc))

    thread = threading.Thread(target=target, name="reliability-bounded", daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"{what} did not return within {seconds} s (hang)"
    ok, value = box[0]
    if not ok:
        raise value
    return value
