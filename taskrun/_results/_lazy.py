"""Completed states that keep their value in the store, not in memory.

With ``cache_result_in_memory=False``, a run whose value was written to the store
ends in a :class:`StoredCompleted`: a ``Completed`` state (named ``Completed`` or
``Cached``) that holds the record's place (:class:`StoredResult`) instead of the
value. Its ``data`` — and so ``state.result()``, ``future.result()``, the values
handed to downstream runs and the lists of ``map`` — reads the record back, checks
it and deserializes it, each time it is asked; nothing keeps the value alive in
between. Pickled (a Dask worker sending it back), it travels as the place, not the value.
"""

from __future__ import annotations

from typing import Any

from ..states import State, StateType
from ._errors import ResultNotAvailable
from ._records import CorruptRecord, decode_record
from ._serializers import serializer_for_record

__all__ = ["StoredCompleted", "StoredResult"]


class StoredResult:
    """Where one run's value lives: its storage and key, and how to read it back.

    Example::

        stored = StoredResult(storage, key, serializer, "my_task")
        value = stored.load()           # read, verify, deserialize
    """

    __slots__ = ("key", "serializer", "storage", "task_name")

    def __init__(self, storage: Any, key: str, serializer: Any, task_name: str) -> None:
        self.storage = storage
        self.key = key
        self.serializer = serializer
        self.task_name = task_name

    def __reduce__(self) -> tuple[Any, ...]:
        return StoredResult, (self.storage, self.key, self.serializer, self.task_name)

    def _missing(self, why: str) -> ResultNotAvailable:
        return ResultNotAvailable(
            f"the result of task {self.task_name!r} is kept only in the store "
            f"(cache_result_in_memory=False), and record {self.key!r} in {self.storage!r} {why}; "
            "run the task again, or keep its results in memory (cache_result_in_memory=True)")

    def load(self) -> Any:
        """The value, read back from the store (blocking I/O); raises :class:`ResultNotAvailable`."""
        try:
            data = self.storage.read(self.key)
        except OSError as exc:
            raise self._missing(f"could not be read ({exc})") from exc
        if data is None:
            raise self._missing("is gone (deleted or pruned)")
        try:
            header, payload = decode_record(data)
        except CorruptRecord as exc:
            raise self._missing(f"is corrupt ({exc})") from exc
        serializer = serializer_for_record(header.serializer, self.serializer)
        if serializer is None:
            raise self._missing(f"was written with serializer {header.serializer!r}, not readable here")
        return serializer.loads(payload)


def _rebuild(stored: StoredResult, name: str, message: str | None, ts: float) -> StoredCompleted:
    state = StoredCompleted(stored, name, message)
    state._ts = ts
    return state


class StoredCompleted(State[Any]):
    """A ``Completed`` state whose value is read back from the store on every access.

    Example::

        state = StoredCompleted(stored, "Completed")
        assert state.is_completed() and state.result() == stored.load()
    """

    __slots__ = ("_stored",)

    def __init__(self, stored: StoredResult, name: str = "Completed", message: str | None = None) -> None:
        super().__init__(StateType.COMPLETED, name, message)  # sets data: None, dropped by the setter
        self._stored = stored

    @property
    def data(self) -> Any:
        """The value, loaded from the store now (not kept)."""
        return self._stored.load()

    @data.setter
    def data(self, value: Any) -> None:
        if value is not None:
            raise AttributeError("a Completed state read from the store holds no value to replace")

    @property
    def stored(self) -> StoredResult:
        """Where the value lives."""
        return self._stored

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self._stored, self.name, self.message, self._ts)
