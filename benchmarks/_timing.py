"""Alternating-pairs timing: the one way every in-process comparison is measured.

``alternate(a, b, pairs)`` calls ``a`` and ``b`` once each to warm up, then
``pairs`` times in turn (a, b, a, b, ...). Each call returns a number (seconds,
or seconds per task); the result holds the median of each side and the median
of the per-pair ratios a/b. Alternating, rather than running all of ``a`` then
all of ``b``, makes both sides see the same machine noise (CPU frequency,
neighbours, allocator state), which is what makes a ratio on a shared 2-core
box meaningful. This is the method of ``checks/perf_ratio.py``.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Pairs:
    """Samples of two alternated measurements."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def median_a(self) -> float:
        return statistics.median(self.a)

    @property
    def median_b(self) -> float:
        return statistics.median(self.b)

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b, strict=True)]

    @property
    def ratio(self) -> float:
        """Median of the per-pair ratios a/b (not the ratio of the medians)."""
        return statistics.median(self.ratios)

    def as_dict(self) -> dict[str, object]:
        return {"a": self.a, "b": self.b, "ratios": self.ratios,
                "median_a": self.median_a, "median_b": self.median_b, "ratio": self.ratio}


def settle() -> None:
    """Collect garbage left by the previous run so it is not billed to the next one."""
    gc.collect()


def alternate(a: Callable[[], float], b: Callable[[], float], pairs: int, warmup: int = 1) -> Pairs:
    """Warm up, then run ``a`` and ``b`` alternately ``pairs`` times."""
    for _ in range(warmup):
        settle()
        a()
        settle()
        b()
    out = Pairs()
    for _ in range(pairs):
        settle()
        out.a.append(a())
        settle()
        out.b.append(b())
    return out


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
