from __future__ import annotations

import random

import pytest

from taskrun._limits._priority import ReadyQueue


def test_fifo_when_all_priorities_are_zero() -> None:
    q: ReadyQueue[int] = ReadyQueue()
    for i in range(100):
        q.push(i)
    assert len(q) == 100
    assert [q.pop() for _ in range(100)] == list(range(100))
    assert not q
    with pytest.raises(IndexError):
        q.pop()


def test_higher_first_fifo_among_equals_including_items_queued_before_the_switch() -> None:
    q: ReadyQueue[str] = ReadyQueue()
    q.push("a0")
    q.push("b0")
    q.push("x5", 5)
    q.push("c0")
    q.push("y5", 5)
    q.push("n-1", -1)
    q.push("z9", 9)
    assert [q.pop() for _ in range(len(q))] == ["z9", "x5", "y5", "a0", "b0", "c0", "n-1"]
    q.push("back to fifo")
    q.push("again")
    assert q._heap is None and [q.pop(), q.pop()] == ["back to fifo", "again"]


def test_push_front_goes_ahead_of_its_priority_only() -> None:
    q: ReadyQueue[str] = ReadyQueue()
    q.push("a")
    q.push_front("resumed")
    assert q.pop() == "resumed"
    q.push("hi", 3)
    q.push_front("resumed0")
    q.push_front("resumed3", 3)
    assert [q.pop() for _ in range(len(q))] == ["resumed3", "hi", "resumed0", "a"]


def test_matches_a_stable_sort_on_random_input() -> None:
    rng = random.Random(7)
    q: ReadyQueue[tuple[int, int]] = ReadyQueue()
    items = [(rng.choice([0, 0, 0, 1, 2, -3]), i) for i in range(500)]
    for prio, i in items:
        q.push((prio, i), prio)
    expected = sorted(items, key=lambda pi: -pi[0])  # sorted() is stable: FIFO among equals
    assert [q.pop() for _ in range(len(q))] == expected


def test_push_front_in_heap_mode_is_like_appendleft() -> None:
    q: ReadyQueue[str] = ReadyQueue()
    q.push("x", 1)
    q.push("a")
    q.push_front("f1")
    q.push_front("f2")
    assert [q.pop() for _ in range(len(q))] == ["x", "f2", "f1", "a"]
