"""The submitter's loop library does not leak into a run on the runner's own loop (issue 14).

``anyio.run`` (and anyio's pytest plugin) set sniffio's context variable to the
backend's name; a run copies the submitter's context, so without care an async
body on the runner's asyncio loop believes it is on trio.
"""

from __future__ import annotations

import anyio
import pytest
import sniffio

from taskrun import ThreadPoolTaskRunner, task


@task
async def uses_anyio() -> str:
    await anyio.sleep(0.01)
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep, 0)
    return sniffio.current_async_library()


@task
def sync_sees() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "none"


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_submitter_on_another_loop_and_with_runner(backend: str) -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        async def main() -> tuple[str, str]:
            first = await runner.submit(uses_anyio, {}).result_async(timeout=10)
            second = await uses_anyio.submit().result_async(timeout=10)
            assert first == second
            return first, await sync_sees.submit().result_async(timeout=10)

        async_lib, sync_lib = anyio.run(main, backend=backend)
    assert async_lib == "asyncio"  # the run executes on the runner's asyncio loop
    assert sync_lib == "none"  # a worker thread runs no loop at all


@pytest.mark.anyio
async def test_async_with_runner_keeps_the_callers_library(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        assert await runner.submit(uses_anyio, {}).result_async(timeout=10) == anyio_backend
