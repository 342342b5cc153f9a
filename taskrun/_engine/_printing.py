"""``log_prints``: route ``print`` calls made inside a run to the run's logger.

``builtins.print`` is replaced once, the first time a run asks for it, by a
wrapper that looks at the current run (a context variable, so it is per run and
per thread). Outside such runs it calls the original ``print``.
"""

from __future__ import annotations

import builtins
import sys
import threading
from typing import Any

from ._logging import run_logger_for
from ._vars import current_flow_run, current_run

_original_print = builtins.print
_installed = False
_lock = threading.Lock()


def _print(*args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
           flush: bool = False) -> None:
    run = current_run.get()
    if run is not None and run._log_prints and (file is None or file is sys.stdout):
        run_logger_for(run).info((" " if sep is None else sep).join(str(a) for a in args))
        return
    if run is None and (file is None or file is sys.stdout):
        flow_run = current_flow_run.get()
        if flow_run is not None and flow_run.log_prints:
            flow_run.logger().info((" " if sep is None else sep).join(str(a) for a in args))
            return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


def install() -> None:
    global _installed
    if _installed:
        return
    with _lock:
        if not _installed:
            builtins.print = _print
            _installed = True
