from __future__ import annotations

import itertools
import threading
import time

import anyio
import pytest

import taskrun.limits as limits
from taskrun._limits import LimitTimeout, concurrency, rate_limit, rate_limit_async
from taskrun._limits._bucket import _buckets


def test_rate_of_20_per_second_from_4_threads() -> None:
    limits.set("api", 20, slot_decay_per_second=20)
    rate_limit("api", occupy=20)  # empty the bucket: what follows is the steady rate
    stamps: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()

    def work() -> None:
        while time.monotonic() - start < 1.0:
            rate_limit("api")
            with lock:
                stamps.append(time.monotonic() - start)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    in_window = [s for s in stamps if s <= 1.0]
    assert 17 <= len(in_window) <= 22, len(in_window)  # 20 due in the first second
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    assert gaps[len(gaps) // 2] == pytest.approx(0.05, abs=0.02)  # evenly spaced, no bursts


def test_burst_up_to_the_limit_then_the_rate() -> None:
    limits.set("api", 5, slot_decay_per_second=10)
    start = time.monotonic()
    for _ in range(5):
        rate_limit("api")
    assert time.monotonic() - start < 0.05
    rate_limit("api", occupy=2)
    assert time.monotonic() - start == pytest.approx(0.2, abs=0.05)


def test_errors_name_the_fix() -> None:
    limits.set("db", 3)
    with pytest.raises(ValueError, match=r"slot_decay_per_second=R\) \(TASKRUN_LIMITS: 'db=3/s'\)"):
        rate_limit("db")
    limits.set("api", 2, slot_decay_per_second=1)
    with pytest.raises(ValueError, match="can never fit limit 'api'"):
        rate_limit("api", occupy=3)
    rate_limit("nobody")  # undefined: no-op
    with pytest.raises(LookupError):
        rate_limit("nobody", strict=True)


def test_timeout_raises_at_once_and_takes_nothing() -> None:
    limits.set("api", 1, slot_decay_per_second=1)
    rate_limit("api")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="rate tokens of limit 'api'") as info:
        rate_limit("api", timeout_seconds=0.5)
    assert time.monotonic() - started < 0.1
    assert isinstance(info.value, LimitTimeout)
    assert _buckets["api"].occupied() <= 1.0


def test_concurrency_on_a_rate_limit_takes_tokens() -> None:
    limits.set("api", 1, slot_decay_per_second=20)
    start = time.monotonic()
    for _ in range(3):
        with concurrency("api"):
            pass
    assert time.monotonic() - start == pytest.approx(0.1, abs=0.04)


@pytest.mark.anyio
async def test_async_rate_limit_and_cancellation_hands_tokens_back() -> None:
    limits.set("api", 10, slot_decay_per_second=10)
    start = time.monotonic()
    for _ in range(12):
        await rate_limit_async("api")
    assert time.monotonic() - start == pytest.approx(0.2, abs=0.06)
    with anyio.move_on_after(0.02):
        await rate_limit_async("api", occupy=10)  # would wait ~1 s
    assert _buckets["api"].occupied() <= 10.5  # the cancelled reservation (10) was handed back
    with anyio.fail_after(1):
        await rate_limit_async("api")


@pytest.mark.anyio
async def test_sync_form_refuses_to_sleep_on_a_loop() -> None:
    limits.set("api", 1, slot_decay_per_second=1)
    rate_limit("api")  # free token: allowed even on the loop
    with pytest.raises(RuntimeError, match="rate_limit_async"):
        rate_limit("api")
    assert _buckets["api"].occupied() <= 1.0
