"""The loop host: an asyncio loop in a background thread, for runners entered with ``with``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ._backend import Backend, current_backend
from ._dispatch import Dispatcher
from ._workers import join_threads


class LoopHost:
    """An asyncio loop in a background thread, running one dispatcher for sync code.

    Started by ``start`` (which returns once the dispatcher is open), stopped by
    ``stop`` (which waits for every run, cancelling them first if asked, then
    joins the loop thread and the worker threads).
    """

    def __init__(self, name: str, make_dispatcher: Callable[[Backend], Dispatcher]) -> None:
        self._name = name
        self._make_dispatcher = make_dispatcher
        self.dispatcher: Dispatcher | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop_waiter: Any = None
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._main, name=f"taskrun-{name}-loop", daemon=True)

    def start(self) -> Dispatcher:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        assert self.dispatcher is not None
        return self.dispatcher

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._started.is_set():
                self._error = exc
                self._started.set()
            else:
                raise

    async def _serve(self) -> None:
        dispatcher = self._make_dispatcher(current_backend())
        await dispatcher.open()
        self._stop_waiter = dispatcher.backend.create_waiter()
        self.dispatcher = dispatcher
        self._started.set()
        failed = await self._stop_waiter.wait()
        self._threads = await dispatcher.close(failed)

    def stop(self, failed: bool) -> None:
        assert self.dispatcher is not None
        if failed:
            self.dispatcher.cancel_all()
        self.dispatcher.backend.call_soon_threadsafe(self._stop_waiter.set, failed)
        try:
            self._thread.join()
        except BaseException:
            # Interrupted while waiting (Ctrl-C): cancel everything, give the loop
            # a bounded time to wind down, and let the interruption through.
            self.dispatcher.cancel_all()
            self._thread.join(timeout=10)
            raise
        finally:
            join_threads(self._threads)
