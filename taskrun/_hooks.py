"""Hook lists that double as decorators: ``@my_task.on_completion``.

Example::

    @my_task.on_failure
    def alert(task, run, state) -> None: ...

    assert alert in my_task.on_failure      # still a plain list for the engine
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

H = TypeVar("H", bound=Callable[..., Any])


class HookList(list):  # type: ignore[type-arg]
    """A list of hooks; calling it with a function appends the function and returns it."""

    def __init__(self, option: str, hooks: Iterable[Any] = ()) -> None:
        super().__init__(hooks)
        self._option = option

    def __call__(self, fn: H) -> H:
        if not callable(fn):
            raise TypeError(f"@….{self._option} decorates a callable (obj, run, state) -> None; got {fn!r}")
        self.append(fn)
        return fn


def check_hooks(option: str, hooks: Any) -> HookList:
    """Validate a hook option (None, one callable, or an iterable of callables)."""
    if hooks is None:
        return HookList(option)
    if callable(hooks) and not isinstance(hooks, list):
        hooks = [hooks]
    if isinstance(hooks, (str, bytes)) or not hasattr(hooks, "__iter__"):
        raise TypeError(
            f"{option} must be a list of callables (obj, run, state) -> None; got {hooks!r}"
        )
    hooks = list(hooks)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"{option} must be a list of callables (obj, run, state) -> None; got {hook!r}")
    return HookList(option, hooks)


__all__ = ["HookList", "check_hooks"]
