"""Wrappers that change how a parameter is treated.

- :class:`unmapped` — passed whole to every run of a ``map``.
- :class:`allow_failure` — the downstream run starts even if the wrapped future
  failed, and receives the exception object as the value.
- :class:`quote` — not inspected for futures at all.
- :class:`opaque` — futures inside are resolved, the results are not traversed.

Example::

    add.map(x=[1, 2, 3], y=unmapped([10, 20]))
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A value wrapped with a marker; :meth:`unwrap` gives it back."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """Broadcast a value to every run of a ``map``.

    Example::

        scale.map(x=[1, 2, 3], factor=unmapped(10))
    """

    __slots__ = ()


class allow_failure(BaseAnnotation[T]):
    """Let a downstream run start even if this input failed.

    The run receives the exception object in place of the failed future's value.

    Example::

        report.submit(allow_failure(flaky_future))
    """

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """Pass a value through untouched: it is not searched for futures.

    Useful for large data structures, to skip the search.

    Example::

        count.submit(quote(huge_list))
    """

    __slots__ = ()


class opaque(BaseAnnotation[T]):
    """Resolve futures inside the value, but do not search their results.

    Example::

        keep.submit(opaque(future_returning_futures))
    """

    __slots__ = ()


__all__ = ["BaseAnnotation", "unmapped", "allow_failure", "quote", "opaque"]
