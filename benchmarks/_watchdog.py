"""A per-workload time limit: a deadlocked run must not hang the suite for ever.

When the limit passes, the watchdog thread prints which workload overran and
every thread's stack, calls ``on_expire`` (which prints the rows measured so
far), and ends the process with exit code 3. Subprocess workloads have their own
``subprocess`` timeouts, so no child outlives the suite.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Callable


class Watchdog:
    def __init__(self, on_expire: Callable[[str], None]) -> None:
        self._on_expire = on_expire
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._what = ""
        self._limit = 0.0
        threading.Thread(target=self._watch, name="benchmarks-watchdog", daemon=True).start()

    def arm(self, seconds: float, what: str) -> None:
        with self._cond:
            self._deadline, self._what, self._limit = time.monotonic() + seconds, what, seconds
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                break
        print(f"\nwatchdog: workload '{self._what}' ran past {self._limit:.0f} s; stacks:",
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        try:
            self._on_expire(self._what)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)
