"""Errors and warnings of the results package."""

from __future__ import annotations

from ..exceptions import TaskRunError


class ResultsWarning(UserWarning):
    """Base class of every warning issued about cached or persisted results.

    Example::

        import warnings
        from taskrun._results._errors import ResultsWarning

        warnings.simplefilter("ignore", ResultsWarning)
    """


class CorruptRecordWarning(ResultsWarning):
    """A stored record failed its checksum or could not be read; it was treated as a miss.

    Example::

        warnings.simplefilter("error", CorruptRecordWarning)   # make it loud in CI
    """


class UnhashableInputWarning(ResultsWarning):
    """A run's input could not be hashed, so the run executed without the cache.

    Issued once per task. The message names the parameter and the fixes.

    Example::

        warnings.simplefilter("ignore", UnhashableInputWarning)
    """


class ResultNotPersistedWarning(ResultsWarning):
    """A run's value could not be serialized or written; the run completed, nothing was stored.

    Example::

        warnings.simplefilter("error", ResultNotPersistedWarning)
    """


class UnhashableInput(TypeError):
    """A value that the cache-key rules do not know how to hash.

    ``parameter_name`` is the task parameter holding it (``None`` outside a run's
    inputs); ``path`` locates the value inside the parameter (``"[2]['a']"``).

    Example::

        try:
            hash_value(threading.Lock(), parameter_name="lock")
        except UnhashableInput as exc:
            print(exc.parameter_name, exc.type_name)
    """

    def __init__(self, parameter_name: str | None, type_name: str, path: str = "", reason: str = "") -> None:
        self.parameter_name = parameter_name
        self.type_name = type_name
        self.path = path
        self.reason = reason
        where = f"parameter {parameter_name!r}" if parameter_name is not None else "value"
        inner = f" at {path}" if path else ""
        why = f": {reason}" if reason else ""
        super().__init__(
            f"cannot hash {where}{inner} of type {type_name} for a cache key{why}. "
            "Supported: None, bool, int, float, str, bytes, lists, tuples, dicts, sets, dataclasses, "
            "enums, datetimes, UUIDs, paths, objects with model_dump(), NumPy arrays and pandas objects."
        )


class ResultStorageKeyError(ValueError):
    """``result_storage_key`` could not be rendered for a run (missing parameter, bad key).

    Example::

        @task(result_storage_key="{parameters[city]}.pkl")
        def weather(city: str) -> float: ...
    """


class ResultNotAvailable(TaskRunError):
    """A result kept only in the store (``cache_result_in_memory=False``) could not be read back.

    Raised by ``state.result()`` / ``future.result()`` when the run's record was
    deleted (``python -m taskrun cache clear``), replaced by something unreadable, or
    its storage cannot be reached from this process.

    Example::

        try:
            value = future.result()
        except ResultNotAvailable:
            value = big_task(x)       # compute it again
    """
