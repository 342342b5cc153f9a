"""A counter of bodies inside a section at once, shared by the limit tests."""

from __future__ import annotations

import threading


class Meter:
    """Counts bodies inside a section at once; ``high`` is the most seen, ``done``
    how many have left it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.high = 0
        self.done = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.high = max(self.high, self.now)

    def exit(self) -> None:
        with self.lock:
            self.now -= 1
            self.done += 1
