"""``submit(..., return_state=True)`` on an event-loop thread refuses before submitting (issue 14)."""

from __future__ import annotations

import pytest

from taskrun import ThreadPoolTaskRunner, task

calls: list[int] = []


@task
def count() -> int:
    calls.append(1)
    return 1


@pytest.mark.anyio
async def test_return_state_on_the_loop_refuses_before_submitting() -> None:
    calls.clear()
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        with pytest.raises(RuntimeError, match="return_state"):
            count.submit(return_state=True)
        # the refusal submitted nothing: the runner has no run in flight
        assert runner._dispatcher is not None and not runner._dispatcher._outstanding
    assert calls == []


def test_return_state_from_sync_code_still_returns_the_state() -> None:
    with ThreadPoolTaskRunner(max_workers=2):
        state = count.submit(return_state=True)
    assert state.is_completed() and state.result() == 1
