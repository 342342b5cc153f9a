from __future__ import annotations

import threading
import time

import anyio
import pytest

import taskrun.limits as limits
from taskrun._limits import (
    concurrency,
    notify_when_free,
    rate_limit,
    rate_limit_async,
    restore_wait_hooks,
    set_async_wait_hooks,
    set_wait_hooks,
    try_admit,
)
from taskrun._limits._local import statistics


def test_wait_hooks_run_only_around_real_waits() -> None:
    limits.set("db", 1)
    limits.set("api", 1, slot_decay_per_second=20)
    calls: list[str] = []
    previous = set_wait_hooks(lambda: calls.append("before"), lambda: calls.append("after"))
    try:
        with concurrency("db"):
            pass
        rate_limit("api")
        assert calls == []
        rate_limit("api")  # the second token is 50 ms away
        assert calls == ["before", "after"]
        with concurrency("db"):
            with pytest.raises(TimeoutError):
                with concurrency("db", timeout_seconds=0.02):
                    pass
        assert calls == ["before", "after", "before", "after"]  # after_block also on timeout
    finally:
        restore_wait_hooks(previous)


@pytest.mark.anyio
async def test_async_wait_hooks() -> None:
    limits.set("db", 1)
    limits.set("api", 1, slot_decay_per_second=20)
    calls: list[str] = []

    async def before() -> None:
        calls.append("before")

    async def after() -> None:
        calls.append("after")

    previous = set_async_wait_hooks(before, after)
    try:
        async with concurrency("db"):
            with anyio.move_on_after(0.02):
                async with concurrency("db"):
                    pass
        assert calls == ["before", "after"]  # after_await also on cancellation
        await rate_limit_async("api")
        await rate_limit_async("api")
        assert calls == ["before", "after", "before", "after"]
    finally:
        restore_wait_hooks(previous)


def test_tag_admission_never_waits_and_notifies() -> None:
    limits.set("tag:db", 1)
    assert try_admit(["untagged-tag"]) is not None  # no limit: the shared no-op permit
    first = try_admit(["db", "other"])
    assert first is not None
    assert try_admit(["db"]) is None
    woken = threading.Event()
    handle = notify_when_free(["db"], woken.set)
    assert not woken.is_set()
    releaser = threading.Thread(target=first.release)
    releaser.start()
    releaser.join(5)
    assert woken.wait(5)
    second = try_admit(["db"])
    assert second is not None
    second.release()
    second.release()  # idempotent
    handle.cancel()
    assert statistics("tag:db").used == 0  # type: ignore[union-attr]


def test_notify_when_free_fires_at_once_if_room_appeared() -> None:
    limits.set("tag:db", 1)
    fired: list[int] = []
    notify_when_free(["db"], lambda: fired.append(1))
    assert fired == [1]


def test_admission_respects_blocking_waiters_and_withdrawn_watchers_stay_silent() -> None:
    limits.set("tag:db", 1)
    holder = try_admit(["db"])
    assert holder is not None
    entered = threading.Event()

    def blocked() -> None:
        with concurrency("tag:db"):
            entered.set()

    t = threading.Thread(target=blocked)
    t.start()
    deadline = time.monotonic() + 5
    while statistics("tag:db").waiting == 0:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.001)
    fired: list[int] = []
    notify_when_free(["db"], lambda: fired.append(1)).cancel()
    holder.release()  # the slot goes to the blocked thread (FIFO), not to admission
    assert entered.wait(5)
    t.join(5)
    assert fired == []
    assert statistics("tag:db").used == 0  # type: ignore[union-attr]


def test_machine_scope_tag_admission(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKRUN_LIMITS_LEASE_TTL", "5")
    limits.set("tag:gpu", 1, scope="machine")
    first = try_admit(["gpu"])
    assert first is not None and try_admit(["gpu"]) is None
    woken = threading.Event()
    notify_when_free(["gpu"], woken.set)
    assert woken.wait(1)  # a poll hint
    first.release()
    again = try_admit(["gpu"])
    assert again is not None
    again.release()
