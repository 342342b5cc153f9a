"""The dispatcher's ready queue: higher ``priority`` first, FIFO among equals.

While every item has priority 0 (the default) the queue is one ``deque``: push
and pop are O(1) and cost what a plain ``deque`` does. The first non-zero
priority switches it to a heap of ``(-priority, sequence, item)``, which keeps
FIFO order among equal priorities; it switches back when it empties.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadyQueue(Generic[T]):
    """A priority queue with a FIFO fast path; not thread-safe (use the dispatcher's lock).

    Example::

        q: ReadyQueue[str] = ReadyQueue()
        q.push("a")
        q.push("urgent", priority=10)
        q.push("b")
        assert [q.pop(), q.pop(), q.pop()] == ["urgent", "a", "b"]
    """

    __slots__ = ("_fifo", "_front", "_heap", "_seq")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._fifo: deque[T] = deque(items)
        self._heap: list[tuple[int, int, T]] | None = None
        self._seq = itertools.count()
        self._front = itertools.count(1)

    def extend(self, items: Iterable[T]) -> None:
        """Push each item with its own ``_priority`` (0 when it has none), in order."""
        push = self.push
        for item in items:
            push(item, getattr(item, "_priority", 0))

    def __iadd__(self, items: Iterable[T]) -> ReadyQueue[T]:
        self.extend(items)
        return self

    def push(self, item: T, priority: int = 0) -> None:
        """Add ``item``; among equal priorities it goes after those already queued."""
        heap = self._heap
        if heap is None:
            if priority == 0:
                self._fifo.append(item)
                return
            heap = self._heap = [(0, next(self._seq), queued) for queued in self._fifo]
            self._fifo.clear()
        heapq.heappush(heap, (-priority, next(self._seq), item))

    def push_front(self, item: T, priority: int = 0) -> None:
        """Add ``item`` ahead of every queued item of its priority, as ``deque.appendleft`` does.

        For a run that resumes after a wait, so it goes before runs that have not started.
        """
        heap = self._heap
        if heap is None and priority == 0:
            self._fifo.appendleft(item)
            return
        if heap is None:
            heap = self._heap = [(0, next(self._seq), queued) for queued in self._fifo]
            self._fifo.clear()
        heapq.heappush(heap, (-priority, -next(self._front), item))

    def pop(self) -> T:
        """The oldest item of the highest priority; ``IndexError`` when empty."""
        heap = self._heap
        if heap is None:
            return self._fifo.popleft()
        item = heapq.heappop(heap)[2]
        if not heap:
            self._heap = None
        return item

    popleft = pop  # the dispatcher's deque spelling

    def __len__(self) -> int:
        return len(self._fifo) if self._heap is None else len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._fifo) if self._heap is None else bool(self._heap)
