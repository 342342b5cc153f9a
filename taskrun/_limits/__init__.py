"""The limits room: concurrency limits, rate limits and tag limits, with no server.

Public names live in :mod:`taskrun.limits` (definitions) and are re-exported by
``taskrun`` (``concurrency``, ``rate_limit``, ``rate_limit_async``). The engine and
the dispatcher use :mod:`._admission` (tag limits), :mod:`._hooks` (wait hooks)
and :mod:`._priority` (the ready queue).
"""

from __future__ import annotations

from ._admission import AdmissionPermit, notify_when_free, tag_limits, try_admit
from ._api import UnknownLimitError, concurrency, rate_limit, rate_limit_async
from ._errors import LimitTimeout
from ._gate import TAG_GATE, TagGate
from ._hooks import WaitHooks, get_wait_hooks, restore_wait_hooks, set_async_wait_hooks, set_wait_hooks
from ._registry import Limit

__all__ = [
    "AdmissionPermit",
    "Limit",
    "LimitTimeout",
    "TAG_GATE",
    "TagGate",
    "UnknownLimitError",
    "WaitHooks",
    "concurrency",
    "get_wait_hooks",
    "notify_when_free",
    "rate_limit",
    "rate_limit_async",
    "restore_wait_hooks",
    "set_async_wait_hooks",
    "set_wait_hooks",
    "tag_limits",
    "try_admit",
]
