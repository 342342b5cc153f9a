"""Retry jitter with the seed engine's distribution (a clamped exponential draw).

``retry_jitter_factor=j`` turns a base delay ``d`` into a draw from an exponential
distribution of mean ``d`` ("Poisson inter-arrival time") restricted to
``[d * c(k), d * k]`` with ``k = 1 + j`` and ``c(k) = log2(2**k / (2**k - 1))``.
The lower clamp is chosen so that the probability mass between it and the
median equals the mass between the median and the upper clamp, which keeps the
mean close to ``d``. The draw is never negative and never above ``d * (1 + j)``.

Example::

    clamped_poisson_interval(10.0, 0.3)   # somewhere in [~1.6, 13.0], mean ≈ 10
"""

from __future__ import annotations

import math
import random


def _exponential_cdf(x: float, mean: float) -> float:
    return 1 - math.exp(-x / mean)


def lower_clamp_multiple(k: float) -> float:
    """The lower clamp ``c`` (as a multiple of the mean) paired with upper clamp ``k``."""
    if k >= 50:  # 2**k overflows float precision long before this matters
        return 0.0
    return math.log(max(2**k / (2**k - 1), 1e-10), 2)


def clamped_poisson_interval(mean: float, clamping_factor: float) -> float:
    """A random delay of mean about ``mean``, clamped by ``clamping_factor`` (> 0)."""
    if not clamping_factor > 0:
        raise ValueError(f"clamping_factor must be > 0, got {clamping_factor!r}")
    if mean <= 0:
        return 0.0
    upper = 1 + clamping_factor
    lower_rv = _exponential_cdf(max(0.0, mean * lower_clamp_multiple(upper)), mean)
    upper_rv = _exponential_cdf(mean * upper, mean)
    # Inverse-CDF sampling restricted to [lower_rv, upper_rv].
    return -math.log(max(1 - random.uniform(lower_rv, upper_rv), 1e-10)) * mean


__all__ = ["clamped_poisson_interval", "lower_clamp_multiple"]
