"""Errors of the limits room, each naming the limit and the fix."""

from __future__ import annotations


class LimitTimeout(TimeoutError):
    """A wait for a limit's slots or tokens outlasted ``timeout_seconds``.

    Example::

        try:
            with concurrency("db", timeout_seconds=1):
                ...
        except TimeoutError as exc:
            print(exc.limit_name)
    """

    def __init__(self, limit_name: str, timeout: float, what: str = "slots") -> None:
        super().__init__(
            f"timed out after {timeout:g} s waiting for {what} of limit {limit_name!r}; "
            "raise the limit (taskrun.limits.set), occupy fewer slots, or pass a larger timeout_seconds"
        )
        self.limit_name = limit_name
        self.timeout = timeout


def too_many(name: str, occupy: int, limit: int) -> ValueError:
    return ValueError(
        f"occupy={occupy} can never fit limit {name!r}, which has {limit} slots; "
        f"occupy at most {limit} or raise the limit with taskrun.limits.set({name!r}, {occupy})"
    )


def check_occupy(occupy: object) -> int:
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise ValueError(f"occupy must be an int >= 1 (slots to hold), got {occupy!r}")
    return occupy


def check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"timeout_seconds must be a number >= 0 or None, got {timeout!r}")
    return float(timeout)
