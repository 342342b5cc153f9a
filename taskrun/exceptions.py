"""Exceptions raised by taskrun.

Every error taskrun raises on its own account derives from :class:`TaskRunError`.
Errors raised by task bodies are re-raised unchanged.

Example::

    from taskrun.exceptions import UpstreamTaskError

    try:
        future.result()
    except UpstreamTaskError as exc:
        print("an input failed:", exc)
"""

from __future__ import annotations


class TaskRunError(Exception):
    """Base class of the errors taskrun raises itself."""


class UpstreamTaskError(TaskRunError):
    """A run never started because an input it depends on did not complete."""


class MappingLengthMismatch(TaskRunError, ValueError):
    """``map`` was given iterable parameters of different lengths."""


class MappingMissingIterable(TaskRunError, ValueError):
    """``map`` was given no iterable parameter to map over."""


class TaskRunTimeout(TaskRunError, TimeoutError):
    """A run exceeded its ``timeout_seconds``."""


class CancelledRun(TaskRunError):
    """The run was cancelled before it could finish."""


class CrashedRun(TaskRunError):
    """The run ended abnormally (its worker died, or it raised a ``BaseException``).

    The original exception, when there is one, is the ``__cause__``.
    """


class ParameterBindError(TaskRunError, TypeError):
    """The arguments given to a task do not match its function's signature."""
