"""A real flow, run by the wiring tests (under a pty, with TASKRUN_RECORD, ...).

Usage: python _flow_script.py [n] [sync|async]
"""

from __future__ import annotations

import sys
import time

import anyio

from taskrun import ThreadPoolTaskRunner, flow, task


@task(retries=1, retry_delay_seconds=0.01)
def fetch(i: int) -> int:
    time.sleep(0.02 + (i % 5) * 0.01)
    if i % 17 == 3:
        raise ValueError(f"bad item {i}")
    return i


@task
def parse(x: int) -> int:
    time.sleep(0.01)
    return x + 1


@task
async def store(x: int) -> int:
    await anyio.sleep(0.005)
    return x


@flow(task_runner=ThreadPoolTaskRunner(max_workers=6))
def nightly(n: int) -> int:
    parsed = parse.map(fetch.map(range(n)))
    parsed.wait()
    return sum(1 for f in parsed if f.state.is_completed())


@flow(task_runner=ThreadPoolTaskRunner(max_workers=6))
async def nightly_async(n: int) -> int:
    stored = store.map(parse.map(fetch.map(range(n))))
    await stored.wait_async()
    return sum(1 for f in stored if f.state.is_completed())


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    if len(sys.argv) > 2 and sys.argv[2] == "async":
        state = anyio.run(lambda: nightly_async.call_with_state(n))
    else:
        state = nightly.call_with_state(n)
    print(f"flow {state.name}: {state.result()} parsed")
