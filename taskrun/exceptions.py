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
    """Base class of the errors taskrun raises itself.

    Example::

        try:
            future.result()
        except TaskRunError as exc:   # taskrun's own reason, not the task's
            print(exc)
    """


class UpstreamTaskError(TaskRunError):
    """A run never started because an input it depends on did not complete.

    Example::

        downstream = report.submit(failing_future)
        downstream.result()          # raises UpstreamTaskError naming the upstream
    """


class MappingLengthMismatch(TaskRunError, ValueError):
    """``map`` was given iterable parameters of different lengths.

    Example::

        add.map([1, 2], [1, 2, 3])   # raises MappingLengthMismatch
    """


class MappingMissingIterable(TaskRunError, ValueError):
    """``map`` was given no iterable parameter to map over.

    Example::

        add.map(1, 2)                # raises MappingMissingIterable
    """


class TaskRunTimeout(TaskRunError, TimeoutError):
    """A run exceeded its ``timeout_seconds``.

    Example::

        slow.with_options(timeout_seconds=1).submit().result()   # raises TaskRunTimeout
    """


class CancelledRun(TaskRunError):
    """The run was cancelled before it could finish.

    Example::

        future.cancel()
        future.result()              # raises CancelledRun
    """


class CrashedRun(TaskRunError):
    """The run ended abnormally (its worker died, or it raised a ``BaseException``).

    The original exception, when there is one, is the ``__cause__``.

    Example::

        try:
            future.result()
        except CrashedRun as exc:
            print("crashed:", exc.__cause__)
    """


class ParameterBindError(TaskRunError, TypeError):
    """The arguments given to a task do not match its function's signature.

    Example::

        add.submit(1, 2, 3)          # add(x, y): raises ParameterBindError
    """
