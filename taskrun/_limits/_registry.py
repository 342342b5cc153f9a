"""Where limits are defined: ``set()`` calls, ``TASKRUN_LIMITS`` and ``limits.toml``.

Precedence, highest first: a ``set()`` in this process, then the environment
variable ``TASKRUN_LIMITS``, then the file ``$TASKRUN_HOME/limits.toml``
(``TASKRUN_HOME`` defaults to ``~/.taskrun``). ``remove(name)`` drops a ``set()``
definition only, so a name also defined by the environment or the file falls back
to that definition. The environment and the file are read at first use and again
on :func:`reload`.

``TASKRUN_LIMITS`` syntax: comma-separated ``name=N`` (a concurrency limit of N
slots) or ``name=N/s`` (a rate limit: N slots that decay at N per second), each
optionally followed by ``@process`` or ``@machine``::

    TASKRUN_LIMITS="db=5,api=10/s,gpu=1@machine,tag:heavy=2"

``limits.toml``::

    [limits]
    db = 5                                    # concurrency limit, process scope
    api = { limit = 10, slot_decay_per_second = 10 }
    gpu = { limit = 1, scope = "machine" }
    "tag:heavy" = 2
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

Scope = Literal["process", "machine"]
Source = Literal["set", "env", "file"]
SCOPES: tuple[Scope, ...] = ("process", "machine")
ENV_VAR = "TASKRUN_LIMITS"
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@dataclass(frozen=True)
class Limit:
    """One limit's definition.

    ``limit`` slots exist. Without ``slot_decay_per_second`` the limit is a
    concurrency limit (slots come back when their holder leaves); with it, occupied
    slots also drain continuously at that many per second, which makes the limit a
    token bucket usable by ``rate_limit``.

    Example::

        Limit("db", 5)                                   # 5 at once
        Limit("api", 10, slot_decay_per_second=10.0)     # 10 per second, bursts of 10
    """

    name: str
    limit: int
    slot_decay_per_second: float | None = None
    scope: Scope = "process"
    source: Source = "set"

    @property
    def is_rate_limit(self) -> bool:
        """True when slots decay, so ``rate_limit`` may use this limit."""
        return self.slot_decay_per_second is not None


def taskrun_home() -> Path:
    """``$TASKRUN_HOME``, else ``~/.taskrun`` (not created here)."""
    raw = os.environ.get("TASKRUN_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".taskrun"


def validate(
    name: object,
    limit: object,
    slot_decay_per_second: object = None,
    scope: object = "process",
    *,
    where: str = "taskrun.limits.set",
    source: Source = "set",
) -> Limit:
    """Check one definition and build its :class:`Limit`; errors name the fix."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{where}: limit name {name!r} is not valid: use letters, digits and '_.:-' "
            "(e.g. 'db' or 'tag:db')"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"{where}: limit {name!r} must be an int >= 0 (the number of slots), got {limit!r}")
    decay: float | None = None
    if slot_decay_per_second is not None:
        if isinstance(slot_decay_per_second, bool) or not isinstance(slot_decay_per_second, (int, float)):
            raise ValueError(
                f"{where}: slot_decay_per_second of {name!r} must be a number > 0 or None, "
                f"got {slot_decay_per_second!r}"
            )
        decay = float(slot_decay_per_second)
        if not (decay > 0 and math.isfinite(decay)):
            raise ValueError(
                f"{where}: slot_decay_per_second of {name!r} must be > 0 (slots freed per second) "
                f"or None for a plain concurrency limit, got {slot_decay_per_second!r}"
            )
    if scope not in SCOPES:
        raise ValueError(f"{where}: scope of {name!r} must be 'process' or 'machine', got {scope!r}")
    return Limit(name, limit, decay, scope, source)


def parse_env(raw: str) -> dict[str, Limit]:
    """Parse a ``TASKRUN_LIMITS`` value (see the module docstring)."""
    out: dict[str, Limit] = {}
    where = f"{ENV_VAR}={raw!r}"
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        scope = "process"
        if "@" in value:
            value, _, scope = value.partition("@")
            value, scope = value.strip(), scope.strip()
        rate = value.endswith("/s")
        number = value[:-2].strip() if rate else value
        if not eq or not number.isdigit():
            raise ValueError(
                f"{where}: entry {item!r} is not 'name=N', 'name=N/s' or either with '@machine' "
                "(e.g. TASKRUN_LIMITS='db=5,api=10/s,gpu=1@machine')"
            )
        n = int(number)
        out[name] = validate(name, n, float(n) if rate else None, scope, where=where, source="env")
    return out


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib as toml_module  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415 - read only when a limits file exists
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as toml_module  # type: ignore[import-not-found,no-redef,unused-ignore]  # noqa: PLC0415 - Python 3.10 fallback
        except ModuleNotFoundError:
            raise RuntimeError(
                f"reading {path} needs a TOML parser: on Python 3.10 run `pip install tomli` "
                "(or define the limits in TASKRUN_LIMITS instead)"
            ) from None
    with path.open("rb") as f:
        try:
            return cast("dict[str, Any]", toml_module.load(f))
        except toml_module.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None


def parse_file(path: Path) -> dict[str, Limit]:
    """Read ``[limits]`` from a ``limits.toml`` (missing file: no limits)."""
    if not path.is_file():
        return {}
    data = _load_toml(path)
    table = data.get("limits", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [limits] must be a table of name = N or name = {{ limit = N, ... }}")
    out: dict[str, Limit] = {}
    where = str(path)
    for name, value in table.items():
        if isinstance(value, dict):
            unknown = set(value) - {"limit", "slot_decay_per_second", "scope"}
            if unknown or "limit" not in value:
                raise ValueError(
                    f"{path}: limit {name!r} needs 'limit' and may have 'slot_decay_per_second' and "
                    f"'scope'; unknown keys: {sorted(unknown)}"
                )
            out[name] = validate(
                name,
                value["limit"],
                value.get("slot_decay_per_second"),
                value.get("scope", "process"),
                where=where,
                source="file",
            )
        else:
            out[name] = validate(name, value, where=where, source="file")
    return out


class Registry:
    """The merged view of every source; lookups are one dict access."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set: dict[str, Limit] = {}
        self._outside: dict[str, Limit] | None = None
        self.effective: dict[str, Limit] = {}
        self._listeners: list[Callable[[Limit | None, str], None]] = []

    def add_listener(self, fn: Callable[[Limit | None, str], None]) -> None:
        """Call ``fn(new_limit_or_None, name)`` after each change of a name's definition.

        ``fn`` is called at once for every limit already in force.
        """
        with self._lock:
            self._listeners.append(fn)
            for name, limit in self.effective.items():
                fn(limit, name)

    def ensure_loaded(self) -> None:
        """Read the environment and the file if that has not happened yet."""
        if self._outside is None:
            self.reload()

    def reload(self) -> None:
        """Re-read ``TASKRUN_LIMITS`` and ``limits.toml``."""
        outside = parse_file(taskrun_home() / "limits.toml")
        outside.update(parse_env(os.environ.get(ENV_VAR, "")))
        with self._lock:
            self._outside = outside
            self._rebuild()

    def _rebuild(self) -> None:
        old = self.effective
        assert self._outside is not None
        new = {**self._outside, **self._set}
        self.effective = new
        for name in old.keys() | new.keys():
            if old.get(name) != new.get(name):
                for fn in self._listeners:
                    fn(new.get(name), name)

    def set(self, limit: Limit) -> None:
        self.ensure_loaded()
        with self._lock:
            self._set[limit.name] = limit
            self._rebuild()

    def remove(self, name: str) -> bool:
        self.ensure_loaded()
        with self._lock:
            found = self._set.pop(name, None) is not None
            self._rebuild()
        return found

    def get(self, name: str) -> Limit | None:
        if self._outside is None:
            self.ensure_loaded()
        return self.effective.get(name)

    def all(self) -> list[Limit]:
        self.ensure_loaded()
        return sorted(self.effective.values(), key=lambda limit: limit.name)

    def snapshot(self) -> Mapping[str, Limit]:
        """The ``set()`` definitions, to carry to another process (see :meth:`install`)."""
        with self._lock:
            return dict(self._set)

    def install(self, snapshot: Mapping[str, Limit]) -> None:
        """Adopt another process's ``set()`` definitions (a Dask or pool worker)."""
        self.ensure_loaded()
        with self._lock:
            self._set = dict(snapshot)
            self._rebuild()


REGISTRY = Registry()
