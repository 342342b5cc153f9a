"""``validate_parameters``: check a flow's arguments against its annotations.

Checked: ``int`` (``bool`` rejected), ``float`` (``int`` accepted), ``str``,
``bytes``, ``bool``, ``None``, any plain class (``isinstance``), ``Any``,
``Optional``/``Union``/``X | Y``, ``Literal[...]``, ``list[X]``, ``set[X]``,
``frozenset[X]``, ``tuple[X, ...]``/``tuple[X, Y]``, ``dict[K, V]`` and the
``collections.abc`` / ``typing`` aliases of these (elements are checked too).
Annotations that cannot be resolved, ``TypeVar``s, protocols and other
constructs are not checked. Values are never converted.

Example::

    check_arguments("greet", {"name": str}, {"name": 1})   # TypeError naming 'name'
"""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from typing import Any

from .exceptions import ParameterBindError

_UNION_TYPES: tuple[Any, ...] = (typing.Union, getattr(types, "UnionType", typing.Union))


def _ok(value: Any, hint: Any) -> bool:
    if hint is Any or hint is typing.Any or isinstance(hint, (typing.TypeVar, str)):
        return True
    if hint is None or hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in _UNION_TYPES:
        return any(_ok(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is typing.Annotated:
        return _ok(value, args[0])
    if origin in (list, cabc.Sequence, cabc.MutableSequence) and origin is not None:
        if origin is list and not isinstance(value, list):
            return False
        if origin is not list and (not isinstance(value, cabc.Sequence) or isinstance(value, (str, bytes))):
            return False
        return not args or all(_ok(v, args[0]) for v in value)
    if origin in (set, frozenset, cabc.Set, cabc.MutableSet):
        if not isinstance(value, origin if origin in (set, frozenset) else cabc.Set):
            return False
        return not args or all(_ok(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_ok(v, args[0]) for v in value)
        return len(args) == len(value) and all(_ok(v, a) for v, a in zip(value, args, strict=True))
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, dict if origin is dict else cabc.Mapping):
            return False
        if not args:
            return True
        return all(_ok(k, args[0]) and _ok(v, args[1]) for k, v in value.items())
    if origin is type:
        return isinstance(value, type)
    if origin is not None:
        return isinstance(value, origin) if isinstance(origin, type) else True
    if isinstance(hint, type):
        if getattr(hint, "_is_protocol", False):
            return True
        return isinstance(value, hint)
    return True


def _name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def check_arguments(owner: str, hints: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Raise :class:`ParameterBindError` naming the first parameter whose value does not fit."""
    for name, value in parameters.items():
        if name not in hints:
            continue
        hint = hints[name]
        if not _ok(value, hint):
            raise ParameterBindError(
                f"{owner}: parameter {name!r} expects {_name(hint)}, got {type(value).__name__} "
                f"({value!r:.80}); pass a {_name(hint)}, or turn the check off with "
                "validate_parameters=False"
            )


def resolved_hints(fn: Any) -> dict[str, Any]:
    """The function's parameter annotations, resolved where possible (else left out)."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        raw = getattr(fn, "__annotations__", {}) or {}
        hints = {k: v for k, v in raw.items() if not isinstance(v, str)}
    hints.pop("return", None)
    return hints


__all__ = ["check_arguments", "resolved_hints"]
