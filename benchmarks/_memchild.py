"""Child process of the memory workload: hold N runs pending, report peak RSS growth.

usage: python _memchild.py {taskrun|asyncio} N

Run as a script in a fresh interpreter (one per measurement), never imported by
the suite's own process. Method of ``checks/mem_per_run.py``: import what the
system needs, read the peak RSS, start N runs that all wait on one event, wait
until they are all pending, read the peak RSS again, release them, check the
results. Prints one JSON line: ``{"n", "base", "peak", "per_run"}`` (bytes).
"""

from __future__ import annotations

import json
import resource
import sys

STARTUP_LIMIT = 60.0  # seconds for all N runs to be pending


def peak_rss_bytes() -> int:
    """Peak resident memory of this process image, in bytes.

    ``VmHWM`` from ``/proc/self/status`` rather than ``getrusage().ru_maxrss``:
    Linux carries ``ru_maxrss`` over ``fork`` and ``exec``, so a child started by
    the (by then large) benchmark process would inherit its parent's peak and
    report no growth at all. ``VmHWM`` starts afresh with the new image. Where
    there is no ``/proc``, fall back to ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024  # macOS reports bytes, Linux KiB


def held_taskrun(n: int) -> tuple[int, int, list[int]]:
    import anyio

    from taskrun import ThreadPoolTaskRunner, task

    gate: anyio.Event | None = None

    @task
    async def held(x: int) -> int:
        assert gate is not None
        await gate.wait()
        return x

    async def go() -> tuple[int, list[int]]:
        nonlocal gate
        gate = anyio.Event()
        async with ThreadPoolTaskRunner(max_workers=n) as runner:
            futures = runner.map(held, {"x": range(n)})
            await anyio.sleep(0.5)
            with anyio.fail_after(STARTUP_LIMIT):  # a broken runner must not hang the suite
                while sum(1 for f in futures[-100:] if f.state.is_running()) < 100:
                    await anyio.sleep(0.1)
            peak = peak_rss_bytes()
            gate.set()
            out = await futures.result_async()
        return peak, out

    base = peak_rss_bytes()
    return (base, *anyio.run(go))


def held_asyncio(n: int) -> tuple[int, int, list[int]]:
    import asyncio

    async def held(x: int, gate: asyncio.Event) -> int:
        await gate.wait()
        return x

    async def go() -> tuple[int, list[int]]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(held(x, gate)) for x in range(n)]
        await asyncio.sleep(0.5)
        assert not any(t.done() for t in tasks[-100:])
        peak = peak_rss_bytes()
        gate.set()
        return peak, list(await asyncio.gather(*tasks))

    base = peak_rss_bytes()
    return (base, *asyncio.run(go()))


def main() -> int:
    system, n = sys.argv[1], int(sys.argv[2])
    base, peak, out = {"taskrun": held_taskrun, "asyncio": held_asyncio}[system](n)
    assert out == list(range(n))
    print(json.dumps({"n": n, "base": base, "peak": peak, "per_run": (peak - base) / n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
