"""The one seam between the engine and the results package.

At task definition the engine calls :func:`results_config_from_options` with the
task's result options. It validates every option (a clear error at the call site)
and returns ``None`` when caching and persistence are off, so a run of such a task
pays nothing. A flow's defaults go through :func:`flow_result_defaults`, and
:func:`effective_config` merges them under a task's options at run time.

For one run the engine calls ``config.begin(run_view)`` once, which computes the key
(or warns once per task about an input it cannot hash and gives a run with no key),
then ``lookup()`` before the attempts and ``store(value)`` after ``Completed``; under
``SERIALIZABLE`` it wraps both in ``acquire``/``release`` (or ``locked()``). Every I/O
call has an ``*_async`` twin that runs the blocking part on a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import math
import os
import string
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import anyio

from ._errors import (
    CorruptRecordWarning,
    ResultNotPersistedWarning,
    ResultStorageKeyError,
    UnhashableInput,
    UnhashableInputWarning,
)
from ._lazy import StoredResult
from ._locks import IsolationLevel, default_lock_manager, resolve_isolation_level
from ._policies import DEFAULT, CacheKeyFnPolicy, CachePolicy, NoCache
from ._records import CorruptRecord, RecordHeader, decode_record, encode_record
from ._serializers import resolve_serializer, serializer_for_record, serializer_name
from ._storage import check_key, resolve_storage
from ._transaction import StagedRecord, get_transaction

__all__ = ["CACHED_STATE_NAME", "FlowResultDefaults", "Hit", "ResultsConfig", "RunCache", "RunView",
           "effective_config", "flow_result_defaults", "results_config_from_options"]

CACHED_STATE_NAME = "Cached"
"""The name of the ``Completed`` state of a run served from the cache."""

RESULT_OPTIONS = (
    "cache_policy", "cache_key_fn", "cache_expiration", "refresh_cache", "persist_result",
    "result_storage", "result_serializer", "result_storage_key", "cache_result_in_memory",
    "on_commit", "on_rollback",
)
FLOW_OPTIONS = ("persist_result", "result_storage", "result_serializer")
_UNSET: Any = object()
_TEMPLATE_ROOTS = frozenset({"parameters", "task_name", "task_run_id", "flow_run_id"})


class RunView(Protocol):
    """What the results package reads from a run. The engine's run context can be one.

    ``parameters`` are the resolved inputs; ``context`` is what ``cache_key_fn``
    receives as its first argument (the run's ``TaskRunContext``); ``flow_run_id`` and
    ``flow_parameters`` are None outside a flow. Optional, read with ``getattr``:
    ``quoted`` (names of parameters passed as ``quote(...)``, left out of the key).
    """

    @property
    def task_name(self) -> str: ...
    @property
    def task_fn(self) -> Callable[..., Any]: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...
    @property
    def task_run_id(self) -> uuid.UUID: ...
    @property
    def flow_run_id(self) -> uuid.UUID | None: ...
    @property
    def flow_parameters(self) -> Mapping[str, Any] | None: ...
    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def context(self) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Hit:
    """A run served from the cache: its value and the record it came from.

    Example::

        hit = run_cache.lookup()
        if hit is not None:
            return Completed(data=hit.value, name=CACHED_STATE_NAME)
    """

    value: Any
    key: str
    header: RecordHeader


def _expiration(value: Any) -> datetime.timedelta | None:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"cache_expiration must be a datetime.timedelta or a number of seconds, got {value!r}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"cache_expiration must be a positive, finite duration, got {value!r}")
    return datetime.timedelta(seconds=seconds)


def _bool(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be True, False or None, got {value!r}")


def _template(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"result_storage_key must be a non-empty str template, got {value!r}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ValueError(f"result_storage_key {value!r} is not a valid template: {exc}") from exc
    for f in fields:
        root = f.split("[", 1)[0].split(".", 1)[0]
        if root not in _TEMPLATE_ROOTS:
            raise ValueError(
                f"result_storage_key {value!r} uses {{{f}}}; fields may name "
                f"{sorted(_TEMPLATE_ROOTS)}, e.g. '{{parameters[city]}}-{{task_name}}.pkl'"
            )
    return value


def _hooks(name: str, value: Any) -> Sequence[Callable[..., Any]]:
    """Validated hooks; a list is kept as is (not copied), so hooks added to it later
    (``@my_task.on_commit``) are seen by the runs after."""
    if value is None:
        return ()
    if callable(value) and not isinstance(value, list):
        value = [value]
    hooks = value if isinstance(value, list) else tuple(value)
    for h in hooks:
        if not callable(h):
            raise TypeError(f"{name} must be a list of callables (transaction) -> None; got {h!r}")
    return hooks


def _refresh_setting() -> bool:
    raw = os.environ.get("TASKRUN_REFRESH_CACHE")
    if raw is None or raw == "":
        return False
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"TASKRUN_REFRESH_CACHE must be true or false (1/0, yes/no), got {raw!r}")


@dataclasses.dataclass(frozen=True)
class FlowResultDefaults:
    """A flow's ``persist_result``, ``result_storage`` and ``result_serializer`` defaults."""

    persist_result: bool | None
    result_storage: Any
    result_serializer: Any
    _merged: dict[int, tuple[Any, ResultsConfig | None]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # The memo of merged configs is keyed by object ids: it stays in its process.
        return FlowResultDefaults, (self.persist_result, self.result_storage, self.result_serializer)


def flow_result_defaults(
    persist_result: bool | None = None, result_storage: Any = None, result_serializer: Any = None
) -> FlowResultDefaults | None:
    """Validate a flow's result options; None when it sets none of them.

    Example::

        defaults = flow_result_defaults(persist_result=True, result_storage="/data/cache")
    """
    _bool("persist_result", persist_result)
    if result_storage is not None:
        resolve_storage(result_storage)
    if result_serializer is not None:
        resolve_serializer(result_serializer)
    if persist_result is None and result_storage is None and result_serializer is None:
        return None
    return FlowResultDefaults(persist_result, result_storage, result_serializer)


def results_config_from_options(**options: Any) -> ResultsConfig | None:
    """Validate a task's result options and build its config; None when all are off.

    Accepts the keyword options ``cache_policy``, ``cache_key_fn``,
    ``cache_expiration``, ``refresh_cache``, ``persist_result``, ``result_storage``,
    ``result_serializer``, ``result_storage_key``, ``cache_result_in_memory``,
    ``on_commit`` and ``on_rollback``; an option not given, or given as None, is unset.

    Rules (the seed engine's): setting a cache policy, a ``cache_key_fn``, a storage,
    a serializer or a storage key turns persistence on unless ``persist_result=False``;
    ``persist_result=True`` alone caches with ``DEFAULT``; ``cache_policy=NO_CACHE``
    persists (if asked) without lookups.

    Example::

        config = results_config_from_options(cache_policy=INPUTS, cache_expiration=60)
    """
    unknown = sorted(set(options) - set(RESULT_OPTIONS))
    if unknown:
        raise TypeError(f"unknown result option(s) {unknown}; known: {list(RESULT_OPTIONS)}")
    config = _build(options, None)
    return config


def effective_config(
    task_config: ResultsConfig | None, flow_defaults: FlowResultDefaults | None
) -> ResultsConfig | None:
    """The config a run uses: the task's options over its flow's defaults (memoized).

    Example::

        config = effective_config(task_config, flow_defaults)   # both may be None
    """
    if flow_defaults is None:
        return task_config
    slot = id(task_config)
    found = flow_defaults._merged.get(slot)
    if found is not None and found[0] is task_config:
        return found[1]
    options = {} if task_config is None else dict(task_config.options)
    merged = _build(options, flow_defaults)
    flow_defaults._merged[slot] = (task_config, merged)
    return merged


def _build(options: Mapping[str, Any], flow: FlowResultDefaults | None) -> ResultsConfig | None:
    opts = {k: v for k, v in options.items() if v is not None}
    policy = opts.get("cache_policy")
    key_fn = opts.get("cache_key_fn")
    if policy is not None and not isinstance(policy, CachePolicy):
        raise TypeError(
            "cache_policy must be a CachePolicy (INPUTS, TASK_SOURCE, DEFAULT, NO_CACHE…) or None, "
            f"got {policy!r}"
        )
    if key_fn is not None:
        if not callable(key_fn):
            raise TypeError(
                f"cache_key_fn must be a callable (context, parameters) -> str | None, got {key_fn!r}")
        if policy is not None:
            raise ValueError(
                "give either cache_policy or cache_key_fn, not both; a key function is a policy: "
                "cache_policy=CachePolicy.from_cache_key_fn(fn) + INPUTS"
            )
        policy = CacheKeyFnPolicy(cache_key_fn=key_fn)
    expiration = _expiration(opts.get("cache_expiration"))
    refresh = _bool("refresh_cache", opts.get("refresh_cache"))
    persist = _bool("persist_result", opts.get("persist_result"))
    in_memory = _bool("cache_result_in_memory", opts.get("cache_result_in_memory"))
    template = _template(opts.get("result_storage_key"))
    storage_opt = opts.get("result_storage")
    serializer_opt = opts.get("result_serializer")
    if flow is not None:
        if storage_opt is None:
            storage_opt = flow.result_storage
        if serializer_opt is None:
            serializer_opt = flow.result_serializer
        if persist is None:
            persist = flow.persist_result
    storage = None if storage_opt is None else resolve_storage(storage_opt)
    serializer = resolve_serializer(serializer_opt)
    on_commit = _hooks("on_commit", opts.get("on_commit"))
    on_rollback = _hooks("on_rollback", opts.get("on_rollback"))
    caching_asked = policy is not None and not isinstance(policy, NoCache)
    if persist is False and caching_asked:
        raise ValueError(
            "persist_result=False turns caching off, but a cache_policy / cache_key_fn is set; "
            "drop one of them (cache_policy=NO_CACHE says 'no caching' explicitly)"
        )
    if persist is None:
        persist = caching_asked or any(
            opts.get(k) is not None for k in ("result_storage", "result_serializer", "result_storage_key"))
        if not persist and (expiration is not None or refresh is not None):
            raise ValueError(
                "cache_expiration and refresh_cache need caching: also set cache_policy=... "
                "(e.g. INPUTS) or cache_key_fn=task_input_hash"
            )
    if not persist:
        return None
    if policy is None:
        policy = DEFAULT
    return ResultsConfig(
        options=dict(options), policy=policy, expiration=expiration, refresh=refresh,
        storage=storage, serializer=serializer, storage_key=template,
        cache_result_in_memory=True if in_memory is None else in_memory,
        isolation=resolve_isolation_level(policy.isolation_level), on_commit=on_commit,
        on_rollback=on_rollback,
    )


_warned_lock = threading.Lock()
_warned_tasks: set[str] = set()


def _warn_unhashable(task_name: str, exc: UnhashableInput) -> None:
    with _warned_lock:
        if task_name in _warned_tasks:
            return
        _warned_tasks.add(task_name)
    name = exc.parameter_name or "<parameter>"
    warnings.warn(
        f"task {task_name!r} runs without the cache: {exc} Fix it with one of: "
        f"cache_key_fn=... that builds the key yourself; cache_policy=INPUTS - {name!r} to leave the "
        f"parameter out of the key; or pass the value as quote(value). (Warned once per task.)",
        UnhashableInputWarning,
        stacklevel=3,
    )


@dataclasses.dataclass(frozen=True)
class ResultsConfig:
    """The validated result options of one task (under its flow's defaults).

    Example::

        config = results_config_from_options(cache_policy=INPUTS)
        run = config.begin(view)
        hit = run.lookup()
    """

    options: dict[str, Any]
    policy: CachePolicy
    expiration: datetime.timedelta | None
    refresh: bool | None
    storage: Any
    serializer: Any
    storage_key: str | None
    cache_result_in_memory: bool
    isolation: IsolationLevel
    on_commit: Sequence[Callable[..., Any]]
    on_rollback: Sequence[Callable[..., Any]]

    @functools.cached_property
    def serializer_name(self) -> str:
        """The name the serializer writes into records (worked out once per config)."""
        return serializer_name(self.serializer)

    @property
    def caching(self) -> bool:
        """False for ``NO_CACHE``: records are written (persistence) but never looked up."""
        return not isinstance(self.policy, NoCache)

    @property
    def serializable(self) -> bool:
        """True when runs must hold the key's lock around lookup, body and store."""
        return self.isolation is IsolationLevel.SERIALIZABLE and self.caching

    def resolve_storage(self) -> Any:
        """Where this task's records go: the policy's key_storage, result_storage, or the default."""
        if self.policy.key_storage is not None:
            return resolve_storage(self.policy.key_storage)
        return self.storage if self.storage is not None else resolve_storage(None)

    def begin(self, view: RunView) -> RunCache:
        """Compute the run's key once; the returned object does the lookup, store and locking.

        Raises :class:`ResultStorageKeyError` when ``result_storage_key`` cannot be rendered.
        """
        key: str | None = None
        cacheable = False
        if self.storage_key is not None:
            key = _render(self.storage_key, view)
            cacheable = self.caching
        elif self.caching:
            try:
                key = self.policy.compute_key(view, view.parameters, view.flow_parameters)
            except UnhashableInput as exc:
                _warn_unhashable(view.task_name, exc)
                key = None
            if key is not None:
                if not isinstance(key, str):
                    raise TypeError(f"the cache policy of {view.task_name!r} returned {key!r}, not a str")
                check_key(key)
                cacheable = True
        if key is None:
            key = f"run-{view.task_run_id.hex}"
        return RunCache(self, view, key, cacheable)

    def lookup(self, view: RunView) -> Hit | None:
        """``begin(view).lookup()``."""
        return self.begin(view).lookup()

    def store(self, view: RunView, value: Any) -> None:
        """``begin(view).store(value)``."""
        self.begin(view).store(value)

    async def lookup_async(self, view: RunView) -> Hit | None:
        """:meth:`lookup` on a worker thread."""
        return await self.begin(view).lookup_async()

    async def store_async(self, view: RunView, value: Any) -> None:
        """:meth:`store` on a worker thread."""
        await self.begin(view).store_async(value)


def _render(template: str, view: RunView) -> str:
    try:
        key = template.format(
            parameters=view.parameters, task_name=view.task_name, task_run_id=view.task_run_id,
            flow_run_id=view.flow_run_id,
        )
    except (KeyError, IndexError, AttributeError) as exc:
        raise ResultStorageKeyError(
            f"result_storage_key {template!r} of task {view.task_name!r} names {exc} which this run "
            f"does not have (parameters: {sorted(view.parameters)})"
        ) from exc
    try:
        return check_key(key)
    except ValueError as exc:
        raise ResultStorageKeyError(f"result_storage_key {template!r} rendered to a bad key: {exc}") from exc


class RunCache:
    """The cache work of one run: its key, the lookup, the store and the key lock.

    ``cacheable`` is False when the run has no key (NO_CACHE, a key function that
    returned None, an unhashable input): ``lookup`` then misses without I/O, and
    ``store`` writes under ``run-<task run id>`` (persistence only).

    Example::

        rc = config.begin(view)
        with rc.locked():                 # a no-op unless SERIALIZABLE
            hit = rc.lookup()
            if hit is None:
                rc.store(body())
    """

    __slots__ = ("_lock_manager", "_locked", "_staged_lock", "cacheable", "config", "key",
                 "storage", "view", "written")

    def __init__(self, config: ResultsConfig, view: RunView, key: str, cacheable: bool) -> None:
        self.config = config
        self.view = view
        self.key = key
        self.cacheable = cacheable
        self.storage = config.resolve_storage()
        self._lock_manager: Any = None
        self._locked = False
        self._staged_lock = False
        #: True once :meth:`store` wrote the record to the storage (not staged in a transaction).
        self.written = False

    # -- reading -----------------------------------------------------------------
    def lookup(self) -> Hit | None:
        """The cached value, or None (miss, expired, corrupt, refresh, or no key). Blocking I/O."""
        if not self.cacheable:
            return None
        refresh = self.config.refresh
        if refresh is None:
            refresh = _refresh_setting()
        if refresh:
            return None
        txn = get_transaction()
        data = txn.read_staged(self.storage, self.key) if txn is not None else None
        if data is None:
            try:
                data = self.storage.read(self.key)
            except OSError as exc:
                warnings.warn(f"reading cached record {self.key!r} failed ({exc}); running the task",
                              CorruptRecordWarning, stacklevel=2)
                return None
        if data is None:
            return None
        try:
            header, payload = decode_record(data)
        except CorruptRecord as exc:
            warnings.warn(
                f"cached record {self.key!r} of task {self.view.task_name!r} in {self.storage!r} is corrupt "
                f"({exc}); treating it as a miss and running the task",
                CorruptRecordWarning, stacklevel=2,
            )
            return None
        if header.expired():
            return None
        serializer = self.config.serializer
        if header.serializer != self.config.serializer_name:
            serializer = serializer_for_record(header.serializer, serializer)
        if serializer is None:
            warnings.warn(
                f"cached record {self.key!r} was written with serializer {header.serializer!r}, which this "
                "task cannot read; treating it as a miss", CorruptRecordWarning, stacklevel=2)
            return None
        try:
            value = serializer.loads(payload)
        except Exception as exc:
            warnings.warn(
                f"cached record {self.key!r} could not be deserialized ({type(exc).__name__}: {exc}); "
                "treating it as a miss", CorruptRecordWarning, stacklevel=2)
            return None
        return Hit(value, self.key, header)

    async def lookup_async(self) -> Hit | None:
        """:meth:`lookup` on a worker thread (the event loop is not blocked)."""
        if not self.cacheable:
            return None
        return await anyio.to_thread.run_sync(self.lookup)

    # -- writing -----------------------------------------------------------------
    def store(self, value: Any) -> bool:
        """Write (or stage, inside a transaction) the run's record; True if written or staged.

        A value the serializer rejects, or a failing write, warns
        :class:`ResultNotPersistedWarning` and returns False: the run stays Completed.
        """
        serializer = self.config.serializer
        try:
            payload = serializer.dumps(value)
            if not isinstance(payload, bytes | bytearray | memoryview):
                raise TypeError(
                    f"{serializer_name(serializer)}.dumps returned {type(payload).__name__}, not bytes")
        except Exception as exc:
            warnings.warn(
                f"the result of task {self.view.task_name!r} was not persisted: serializer "
                f"{serializer_name(serializer)!r} failed ({type(exc).__name__}: {exc}); try "
                "result_serializer='cloudpickle' or a serializer of your own",
                ResultNotPersistedWarning, stacklevel=2)
            return False
        data = encode_record(self.key, bytes(payload), serializer=self.config.serializer_name,
                             task=self.view.task_name, expiration=self.config.expiration)
        txn = get_transaction()
        if txn is not None:
            release = None
            if self._locked:
                self._staged_lock = True
                release = self._release_now
            txn.stage(StagedRecord(self.storage, self.key, data, self.view.task_name,
                                   list(self.config.on_commit), list(self.config.on_rollback), release))
            return True
        try:
            self.storage.write(self.key, data)
        except Exception as exc:
            warnings.warn(
                f"the result of task {self.view.task_name!r} was not persisted: writing {self.key!r} to "
                f"{self.storage!r} failed ({type(exc).__name__}: {exc})",
                ResultNotPersistedWarning, stacklevel=2)
            return False
        self.written = True
        return True

    async def store_async(self, value: Any) -> bool:
        """:meth:`store` on a worker thread (the event loop is not blocked)."""
        return await anyio.to_thread.run_sync(self.store, value)

    def stored_result(self) -> StoredResult:
        """Where this run's record is, to read its value back (``cache_result_in_memory=False``)."""
        return StoredResult(self.storage, self.key, self.config.serializer, self.view.task_name)

    # -- locking -----------------------------------------------------------------
    def _manager(self) -> Any:
        if self._lock_manager is None:
            manager = self.config.policy.lock_manager
            self._lock_manager = manager if manager is not None else default_lock_manager(self.storage)
        return self._lock_manager

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the key's lock when SERIALIZABLE (True at once otherwise); False at timeout.

        Blocks the calling thread: call it where waiting holds no worker slot.
        """
        if not self.config.serializable or self._locked:
            return True
        if not self._manager().acquire(self.key, str(self.view.task_run_id), timeout):
            return False
        self._locked = True
        return True

    async def acquire_async(self, timeout: float | None = None) -> bool:
        """:meth:`acquire` without blocking the loop (asyncio and trio); cancellation leaves it untaken."""
        if not self.config.serializable or self._locked:
            return True
        if not await self._manager().acquire_async(self.key, str(self.view.task_run_id), timeout):
            return False
        self._locked = True
        return True

    def release(self) -> None:
        """Let the key's lock go (a no-op if not held). A record staged in a transaction keeps
        the lock until the transaction commits or rolls back."""
        if self._locked and not self._staged_lock:
            self._release_now()

    def _release_now(self) -> None:
        if self._locked:
            self._locked = False
            self._manager().release(self.key, str(self.view.task_run_id))

    @contextlib.contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[RunCache]:
        """``with rc.locked():`` — acquire, and release however the block ends."""
        if not self.acquire(timeout):
            raise TimeoutError(f"the cache lock of {self.key!r} was not free within {timeout} s")
        try:
            yield self
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def locked_async(self, timeout: float | None = None) -> AsyncIterator[RunCache]:
        """``async with rc.locked_async():`` — the async twin of :meth:`locked`."""
        if not await self.acquire_async(timeout):
            raise TimeoutError(f"the cache lock of {self.key!r} was not free within {timeout} s")
        try:
            yield self
        finally:
            self.release()
