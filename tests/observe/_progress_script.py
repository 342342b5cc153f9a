"""Run by the progress tests: feeds synthetic runs through a Progress display.

Usage: python _progress_script.py [live|auto|off] [interval]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _fakes import make_runs, play

from taskrun._observe._events import emit_state, emit_submitted, flush
from taskrun._observe._progress import Progress
from taskrun.states import Running

mode = sys.argv[1]
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
enabled = None if mode == "env" else mode != "off"
with Progress({"fetch": 30}, enabled=enabled, interval=interval) as progress:
    runs = make_runs("fetch", 30)
    for j, run in enumerate(runs[:20]):
        play(run, fail=(j % 10 == 3))
        time.sleep(0.02)
    for run in make_runs("parse", 5):
        play(run)
    for run in runs[20:24]:               # still running when the middle snapshot is printed
        emit_submitted(run)
        emit_state(run, Running())
    flush()
    time.sleep(max(interval, 0.3) + 0.1)
    for run in runs[20:24]:
        from taskrun._observe._events import emit_finished
        from taskrun.states import Completed

        emit_finished(run, Completed())
    for j, run in enumerate(runs[24:]):
        play(run, fail=(j == 0))
        time.sleep(0.02)
print(f"mode={progress.mode}")
