"""Finding futures nested in parameters, and replacing them with what they stand for.

Containers searched: lists, tuples (named ones too), sets, frozensets, dicts (keys
and values) and dataclass instances. ``quote`` stops the search, ``opaque`` lets
its futures be resolved without searching their results, ``allow_failure`` marks
everything inside as allowed to fail. Results of completed futures are searched
too (so a task may return futures), except under ``opaque``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from .._plain import LEAF_TYPES
from .._results._lazy import StoredCompleted
from ..annotations import BaseAnnotation, allow_failure, opaque, quote
from ._future import TaskFuture

_ATOMS = LEAF_TYPES
_SEQUENCES = (list, tuple, set, frozenset)
_CONTAINERS = (dict, list, tuple, set, frozenset)


def collect_futures(expr: Any, wait_for: Any = None) -> list[tuple[TaskFuture[Any], bool]]:
    """Every future in ``expr`` (and in ``wait_for``) with its allowed-to-fail flag.

    A future appears once, allowed to fail only if every occurrence is.
    """
    found: dict[int, tuple[TaskFuture[Any], bool]] = {}
    seen: set[int] = set()
    _collect(expr, found, False, True, seen)
    if wait_for is not None:
        for item in wait_for:
            _collect(item, found, False, False, seen)
    return list(found.values())


def _collect(expr: Any, found: dict[int, tuple[TaskFuture[Any], bool]], allowed: bool,
             into_results: bool, seen: set[int]) -> None:
    kind = type(expr)
    if kind in _ATOMS:
        return
    if isinstance(expr, TaskFuture):
        key = id(expr)
        previous = found.get(key)
        if previous is None:
            found[key] = (expr, allowed)
        elif previous[1] and not allowed:
            found[key] = (expr, False)
        else:
            return
        # A value kept in the store holds no live future (those do not serialize): not read back here.
        state = expr._state
        if into_results and expr._final and state.is_completed() and type(state) is not StoredCompleted:
            _collect(state.data, found, allowed, True, seen)
        return
    if isinstance(expr, BaseAnnotation):
        if isinstance(expr, quote):
            return
        _collect(expr.value, found, allowed or isinstance(expr, allow_failure),
                 into_results and not isinstance(expr, opaque), seen)
        return
    if isinstance(expr, _CONTAINERS) or _is_dataclass_instance(expr):
        if id(expr) in seen:
            return
        seen.add(id(expr))
        if isinstance(expr, dict):
            for key, value in expr.items():
                _collect(key, found, allowed, into_results, seen)
                _collect(value, found, allowed, into_results, seen)
        elif isinstance(expr, _SEQUENCES):
            for item in expr:
                _collect(item, found, allowed, into_results, seen)
        else:
            for field in dataclasses.fields(expr):
                _collect(getattr(expr, field.name), found, allowed, into_results, seen)


def _is_dataclass_instance(expr: Any) -> bool:
    return dataclasses.is_dataclass(expr) and not isinstance(expr, type)


Resolver = Callable[[TaskFuture[Any], bool], Any]


def replace_futures(expr: Any, resolve: Resolver, traverse_results: bool = True) -> Any:
    """A copy of ``expr`` with each future replaced by ``resolve(future, allowed)``.

    Annotations are unwrapped on the way. Containers with nothing to replace are
    returned as they are, not copied.
    """
    return _replace(expr, resolve, False, traverse_results)


def _replace(expr: Any, resolve: Resolver, allowed: bool, into_results: bool) -> Any:
    kind = type(expr)
    if kind in _ATOMS:
        return expr
    if isinstance(expr, TaskFuture):
        value = resolve(expr, allowed)
        if into_results and expr._state.is_completed():
            return _replace(value, resolve, allowed, True)
        return value
    if isinstance(expr, BaseAnnotation):
        if isinstance(expr, quote):
            return expr.value
        return _replace(expr.value, resolve, allowed or isinstance(expr, allow_failure),
                        into_results and not isinstance(expr, opaque))
    if isinstance(expr, dict):
        items = [(_replace(k, resolve, allowed, into_results), _replace(v, resolve, allowed, into_results))
                 for k, v in expr.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, expr.items(), strict=True)):
            return expr
        new = copy.copy(expr)
        new.clear()
        new.update(items)
        return new
    if isinstance(expr, _SEQUENCES):
        values = [_replace(v, resolve, allowed, into_results) for v in expr]
        if all(v is v0 for v, v0 in zip(values, expr, strict=True)):
            return expr
        if isinstance(expr, tuple) and hasattr(expr, "_fields"):
            return kind(*values)
        try:
            return kind(values)
        except TypeError:  # a subclass with its own constructor: fall back to its builtin base
            base = next(b for b in _SEQUENCES if isinstance(expr, b))
            return base(values)
    if _is_dataclass_instance(expr):
        changes = {}
        for field in dataclasses.fields(expr):
            old = getattr(expr, field.name)
            new_value = _replace(old, resolve, allowed, into_results)
            if new_value is not old:
                changes[field.name] = new_value
        if not changes:
            return expr
        new = copy.copy(expr)
        for name, value in changes.items():
            object.__setattr__(new, name, value)
        return new
    return expr
