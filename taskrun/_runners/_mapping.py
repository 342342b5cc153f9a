"""Splitting ``map`` parameters into one parameters dict per run."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .._core._backend import in_event_loop_thread
from .._core._gc import collector_paused
from .._engine._future import TaskFuture
from ..annotations import BaseAnnotation, unmapped
from ..exceptions import MappingLengthMismatch, MappingMissingIterable


def is_mappable(value: Any) -> bool:
    """Iterables are mapped over, except text, bytes, mappings and file objects."""
    if isinstance(value, (str, bytes, bytearray, Mapping, io.IOBase)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _future_value(name: str, future: TaskFuture[Any]) -> Any:
    if not future.done() and in_event_loop_thread():
        raise RuntimeError(
            f"map() was given an unfinished future for parameter {name!r} and cannot wait "
            "for it on the event loop thread; `await` that future first, then map over its result"
        )
    return future.result()


def _classify(name: str, value: Any) -> tuple[bool, Any, type[BaseAnnotation[Any]] | None]:
    """(mapped?, value-or-iterable, annotation type to re-wrap each item in)."""
    if isinstance(value, unmapped):
        return False, value.unwrap(), None
    wrapper: type[BaseAnnotation[Any]] | None = None
    inner = value
    if isinstance(value, BaseAnnotation):
        wrapper, inner = type(value), value.unwrap()
    if isinstance(inner, TaskFuture):
        inner = _future_value(name, inner)
    if is_mappable(inner):
        return True, inner, wrapper
    return False, value, None


def _partition(what: str, task_name: str, parameters: dict[str, Any],
               collect: Callable[[Any], Any]) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """Broadcast values, and mapped ones as ``(collect(iterable), wrapper)``."""
    static: dict[str, Any] = {}
    mapped: dict[str, tuple[Any, Any]] = {}
    for name, value in parameters.items():
        is_mapped, inner, wrapper = _classify(name, value)
        if is_mapped:
            mapped[name] = (collect(inner), wrapper)
        else:
            static[name] = inner
    if not mapped:
        raise MappingMissingIterable(
            f"{what}() of task {task_name!r} got no iterable parameter (parameters: {sorted(parameters)}); "
            "pass at least one list, tuple, range or generator, or use submit() for a single run"
        )
    return static, mapped


class Column:
    """The runs of a map over one parameter, with none broadcast: ``values[i]`` is
    that parameter's value for run ``i``. Such a run's record holds the bare value
    and makes its parameters dict on first access (see the run record)."""

    __slots__ = ("name", "values")

    def __init__(self, name: str, values: list[Any]) -> None:
        self.name = name
        self.values = values

    def __len__(self) -> int:
        return len(self.values)


def split_parameters(task_name: str, parameters: dict[str, Any]) -> list[dict[str, Any]] | Column:
    """One parameters dict per run, or the one :class:`Column` of them; raises on
    missing iterables or length mismatch."""
    static, mapped = _partition("map", task_name, parameters, list)
    lengths = {name: len(values) for name, (values, _) in mapped.items()}
    if len(set(lengths.values())) > 1:
        raise MappingLengthMismatch(
            f"map() of task {task_name!r} got iterables of different lengths {lengths}; "
            "make them the same length, or wrap values meant for every run in unmapped()"
        )
    with collector_paused():  # after _partition, which may wait for a future
        return _build(parameters, static, mapped, next(iter(lengths.values())))


def _build(parameters: dict[str, Any], static: dict[str, Any], mapped: dict[str, tuple[Any, Any]],
           count: int) -> list[dict[str, Any]] | Column:
    if len(mapped) == 1 and not static:
        ((name, (values, wrapper)),) = mapped.items()
        if wrapper is None:
            return Column(name, values if type(values) is list else list(values))
        return [{name: wrapper(v)} for v in values]
    order = list(parameters)
    runs = []
    for i in range(count):
        params: dict[str, Any] = {}
        for name in order:
            if name in mapped:
                values, wrapper = mapped[name]
                params[name] = values[i] if wrapper is None else wrapper(values[i])
            else:
                params[name] = static[name]
        runs.append(params)
    return runs


def stream_parameters(task_name: str, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Like :func:`split_parameters`, consuming the iterables lazily."""
    static, mapped = _partition("imap", task_name, parameters, iter)
    return _zip_strict(task_name, list(parameters), static, mapped)


_END: Any = object()


def _zip_strict(task_name: str, order: list[str], static: dict[str, Any],
                mapped: dict[str, tuple[Iterator[Any], Any]]) -> Iterator[dict[str, Any]]:
    index = 0
    while True:
        items = {name: next(it, _END) for name, (it, _) in mapped.items()}
        ended = [name for name, v in items.items() if v is _END]
        if ended:
            if len(ended) != len(items):
                raise MappingLengthMismatch(
                    f"imap() of task {task_name!r}: iterable(s) {ended} ended after {index} items "
                    f"while {sorted(set(items) - set(ended))} went on; make them the same length"
                )
            return
        params: dict[str, Any] = {}
        for name in order:
            if name in mapped:
                wrapper = mapped[name][1]
                params[name] = items[name] if wrapper is None else wrapper(items[name])
            else:
                params[name] = static[name]
        index += 1
        yield params
