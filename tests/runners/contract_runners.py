"""What the contract suite knows about each runner kind (shared by conftest and the tests)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from taskrun import TaskRunner

#: The runner kinds every contract case runs on.
RUNNERS = ("thread", "process", "dask")


@dataclasses.dataclass(frozen=True)
class RunnerFactory:
    """Makes fresh, unentered runners of one kind; ``slots`` is how many runs execute at once.

    Example::

        def test_it(runner_factory: RunnerFactory) -> None:
            with runner_factory() as runner:
                assert runner.submit(add, {"x": 1}).result(timeout=10) == 1
    """

    kind: str
    slots: int
    make: Callable[[], TaskRunner[Any]]

    def __call__(self) -> TaskRunner[Any]:
        return self.make()
