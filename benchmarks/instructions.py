"""Instructions per run, counted by valgrind: a figure the machine's load does not move.

Run: python -m benchmarks.instructions [async|trio|sync|submit|chain|tagged|recorded|events|delivered ...]

``submit`` is 20,000 single ``task.submit`` calls (no ``wait_for``): with ``sync``
and ``chain`` it splits a chain link's cost into submission and dependency.

Each workload runs in a fresh interpreter under ``valgrind --tool=callgrind``
once with one round and once with three rounds of 20,000 runs; the difference
divided by 40,000 is the cost of one run, with start-up and imports taken out.
Times on a shared 2-core machine move by 10-30 % between sittings; these counts
move by about 1,000 in 70,000, so they show whether a change to the per-run path
saved or cost work. (They count work, not waiting: lock hand-offs between
threads cost time that no instruction count shows.) Needs ``valgrind`` on PATH;
about a minute per workload.

``recorded`` is ``sync`` with ``TASKRUN_RECORD`` set (the runner keeps its records
and appends them as JSON Lines to a temporary file), counted until the runner has
closed, so every record is built and written: set against ``sync``, it is what
recording costs per run, the delivery thread's work included. How the delivery
thread's batches fall against the map's threads differs from sitting to sitting,
so the recorder's own work is also counted on one thread:

``delivered`` counts the recorder's own work alone, on one thread, so it is as
steady as the others: each round makes 20,000 new runs and the events a map emits
for them, then feeds those to a Recorder writing JSON Lines as the delivery thread
would. ``events`` is the same without the Recorder; ``delivered`` minus ``events``
is what recording one run costs the delivery thread, printed when both are asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

N = 20_000

_CHILD = r'''
import os, sys, tempfile
import anyio
import taskrun.limits as limits
from taskrun import ThreadPoolTaskRunner, task

@task
async def anoop(x): return x

@task
def noop(x): return x

@task(tags=["free"])
def tagged(x): return x

limits.set("tag:free", 10**9)
N = int(sys.argv[3])

async def amap():
    async with ThreadPoolTaskRunner() as r:
        assert await r.map(anoop, {"x": list(range(N))}).result_async() == list(range(N))

def smap(t):
    with ThreadPoolTaskRunner(max_workers=8) as r:
        assert r.map(t, {"x": list(range(N))}).result() == list(range(N))

def submit_each():
    with ThreadPoolTaskRunner(max_workers=8) as r:
        futures = [noop.submit(i) for i in range(N)]
        assert [f.result() for f in futures] == list(range(N))

def chain():
    with ThreadPoolTaskRunner(max_workers=8) as r:
        f = None
        for i in range(N):
            f = noop.submit(i, wait_for=[f] if f is not None else None)
        assert f.result() == N - 1

def replay(deliver):
    # One thread, so the count is steady: N new runs and the events a map emits for
    # them (submitted, Running, Completed), then, if asked, a Recorder fed as the
    # delivery thread feeds it (trees without subscribe_raw got Event objects).
    import contextvars
    from taskrun._engine._record import TaskRunContext
    from taskrun._observe import _events
    from taskrun._observe._recorder import Recorder
    from taskrun.states import Completed, Running
    context = contextvars.copy_context()
    raw = []
    for i in range(N):
        run = TaskRunContext(noop, {"x": i}, noop.tags, context)
        run.attempt = 1
        at = 10**12 + 10 * i
        raw += [("submitted", run, None, None, at, "MainThread", None, False, None),
                ("state", run, None, Running(), at + 5, "worker-0", None, False, None),
                ("finished", run, None, Completed(i), at + 9, "worker-0", None, False, None)]
    if not deliver:
        return
    if not hasattr(_events, "subscribe_raw"):
        raw = [_events.Event(k, r, f, s, m / 1e9, m / 1e9 + _events._wall_offset, t, 1, w, c, x)
               for k, r, f, s, m, t, w, c, x in raw]
    recorder = Recorder(os.path.join(records.name, "runs.jsonl"), keep=False)
    with open(recorder.path, "a", encoding="utf-8") as recorder._file:
        for i in range(0, len(raw), 5000):
            recorder._on_batch(raw[i:i + 5000])

workload = sys.argv[1]
records = tempfile.TemporaryDirectory()
if workload == "recorded":
    os.environ["TASKRUN_RECORD"] = os.path.join(records.name, "runs.jsonl")
for _ in range(int(sys.argv[2])):
    if workload in ("events", "delivered"): replay(workload == "delivered")
    elif workload == "async": anyio.run(amap)
    elif workload == "trio": anyio.run(amap, backend="trio")
    elif workload in ("sync", "recorded"): smap(noop)
    elif workload == "tagged": smap(tagged)
    elif workload == "submit": submit_each()
    elif workload == "chain": chain()
'''

WORKLOADS = ("async", "trio", "sync", "submit", "chain", "tagged", "recorded", "events", "delivered")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # imports from .pyc: a steadier start-up
    return env


def _warm(workload: str) -> None:
    """Run ``workload`` once, small and without valgrind, so every module it imports has
    its .pyc written before the counts: else the first count (three rounds) also pays
    for compiling them, about 15k instructions per run on a tree with no .pyc yet."""
    subprocess.run([sys.executable, "-c", _CHILD, workload, "1", "200"], env=_env(), check=True,
                   capture_output=True)


def _count(workload: str, rounds: int) -> int:
    env = _env()
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", _CHILD, workload, str(rounds), str(N)],
        capture_output=True, text=True, env=env, check=True,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count for {workload!r}:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def per_run(workload: str) -> int:
    """Instructions one run of ``workload`` costs (three rounds minus one, per run)."""
    _warm(workload)
    return (_count(workload, 3) - _count(workload, 1)) // (2 * N)


def main(argv: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    chosen = argv or list(WORKLOADS)
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    counts = {}
    for workload in chosen:
        counts[workload] = per_run(workload)
        print(f"{workload:9s} {counts[workload]:>8,} instructions per run", flush=True)
    if "events" in counts and "delivered" in counts:
        print(f"recorder  {counts['delivered'] - counts['events']:>8,} instructions per run "
              "(delivered - events: the delivery thread's work for one recorded run)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
