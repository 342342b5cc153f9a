"""A minimal RunView for the results tests (the engine's run context plays this part)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass
class View:
    task_fn: Callable[..., Any]
    parameters: Mapping[str, Any]
    task_name: str = "t"
    task_run_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    flow_run_id: uuid.UUID | None = None
    flow_parameters: Mapping[str, Any] | None = None
    tags: frozenset[str] = frozenset()
    context: Any = None
    quoted: frozenset[str] = frozenset()


def double(x: int) -> int:
    return 2 * x


def view(fn: Callable[..., Any] = double, **parameters: Any) -> View:
    return View(task_fn=fn, parameters=parameters, task_name=fn.__name__)
