"""Cache policies: what a run's cache key is made of.

A policy's ``compute_key(task_ctx, inputs, flow_parameters)`` returns a key (hex
text) or None (no key: the run is not looked up). ``task_ctx`` is the run as the
results package sees it (see ``_service.RunView``: ``task_name``, ``task_fn``,
``task_run_id``, ``flow_run_id``, ``context``…).

Composition follows the seed engine: ``a + b`` is a :class:`CompoundPolicy` whose key
is the hash of the keys of its parts that are not None (None when all are); adding
``NO_CACHE`` changes nothing; ``policy - "name"`` leaves parameter ``name`` out of
every :class:`Inputs` part (a policy without an ``Inputs`` part is returned as it is);
``configure(...)`` returns a copy with the storage, isolation level or lock manager set.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from typing_extensions import Self

from ._errors import UnhashableInput
from ._hashing import hash_function_source, hash_objects, hash_parameters, hash_value
from ._locks import resolve_isolation_level

__all__ = ["DEFAULT", "FLOW_PARAMETERS", "INPUTS", "NO_CACHE", "RUN_ID", "TASK_SOURCE", "CacheKeyFnPolicy",
           "CachePolicy", "CompoundPolicy", "FlowParameters", "Inputs", "NoCache", "RunId", "TaskSource",
           "task_input_hash", "uses_flow_parameters"]


@dataclasses.dataclass
class CachePolicy:
    """Base class of every cache policy.

    Subclass it and override :meth:`compute_key` for a rule of your own.

    Example::

        @dataclasses.dataclass
        class ByDay(CachePolicy):
            def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
                return datetime.date.today().isoformat()

        @task(cache_policy=INPUTS + ByDay())
        def report(region: str) -> str: ...
    """

    key_storage: Any = None
    isolation_level: Any = None
    lock_manager: Any = None

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[Any, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        """A policy whose key is ``cache_key_fn(context, parameters)``."""
        return CacheKeyFnPolicy(cache_key_fn=cache_key_fn)

    def configure(
        self,
        key_storage: Any = None,
        isolation_level: Any = None,
        lock_manager: Any = None,
    ) -> Self:
        """A copy with ``key_storage`` (where records go), ``isolation_level`` or ``lock_manager`` set.

        Arguments left at None keep the current value.
        """
        new = copy.copy(self)
        if key_storage is not None:
            new.key_storage = key_storage
        if isolation_level is not None:
            new.isolation_level = resolve_isolation_level(isolation_level)
        if lock_manager is not None:
            missing = [m for m in ("acquire", "acquire_async", "release") if not callable(
                getattr(lock_manager, m, None))]
            if missing:
                raise TypeError(
                    f"lock_manager must have acquire(key, holder, timeout), acquire_async(...) and "
                    f"release(key, holder); {lock_manager!r} lacks {', '.join(missing)}"
                )
            new.lock_manager = lock_manager
        return new

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """The run's key, or None for "do not look this run up"."""
        raise NotImplementedError

    def __sub__(self, other: str) -> CachePolicy:
        if not isinstance(other, str):
            raise _bad_sub(other)
        return self

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, NoCache):
            return self
        _check_same(self, other)
        return CompoundPolicy(
            policies=[self, other],
            key_storage=self.key_storage if self.key_storage is not None else other.key_storage,
            isolation_level=self.isolation_level or other.isolation_level,
            lock_manager=self.lock_manager if self.lock_manager is not None else other.lock_manager,
        )


def _bad_sub(other: object) -> TypeError:
    return TypeError(f"only parameter names (str) can be subtracted from a cache policy, got {other!r}")


def _check_same(a: CachePolicy, b: CachePolicy) -> None:
    for name in ("key_storage", "isolation_level", "lock_manager"):
        x, y = getattr(a, name), getattr(b, name)
        if x is not None and y is not None and x != y:
            raise ValueError(f"cannot add cache policies with different {name}s ({x!r} and {y!r})")


@dataclasses.dataclass
class CacheKeyFnPolicy(CachePolicy):
    """``cache_key_fn(context, parameters) -> str | None`` as a policy.

    ``context`` is the run's context (what ``get_run_context()`` returns inside it).

    Example::

        policy = CacheKeyFnPolicy(cache_key_fn=lambda ctx, params: str(params["day"]))
    """

    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if self.cache_key_fn is None:
            return None
        context = getattr(task_ctx, "context", task_ctx)
        key = self.cache_key_fn(context, dict(inputs or {}))
        if key is not None and not isinstance(key, str):
            raise TypeError(f"cache_key_fn must return a str or None, returned {key!r}")
        return key


@dataclasses.dataclass
class CompoundPolicy(CachePolicy):
    """Several policies at once: the hash of the keys of those that give one.

    Nested compounds are flattened and every :class:`Inputs` part merges into one
    (with the union of their ``exclude`` lists).

    Example::

        policy = CompoundPolicy(policies=[INPUTS, TASK_SOURCE])   # same as INPUTS + TASK_SOURCE
    """

    policies: list[CachePolicy] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        flat: list[CachePolicy] = []
        for p in self.policies:
            flat.extend(p.policies if isinstance(p, CompoundPolicy) else [p])
        inputs = [p for p in flat if isinstance(p, Inputs)]
        self.policies = [p for p in flat if not isinstance(p, Inputs | NoCache)]
        if inputs:
            excluded = sorted({name for p in inputs for name in p.exclude})
            self.policies.append(Inputs(exclude=excluded))

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        keys = [k for p in self.policies
                if (k := p.compute_key(task_ctx, inputs, flow_parameters, **kwargs)) is not None]
        if not keys:
            return None
        return hash_objects(*keys)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, NoCache):
            return self
        _check_same(self, other)
        return CompoundPolicy(
            policies=[*self.policies, other],
            key_storage=self.key_storage if self.key_storage is not None else other.key_storage,
            isolation_level=self.isolation_level or other.isolation_level,
            lock_manager=self.lock_manager if self.lock_manager is not None else other.lock_manager,
        )

    def __sub__(self, other: str) -> CachePolicy:
        if not isinstance(other, str):
            raise _bad_sub(other)
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self
        return CompoundPolicy(
            policies=[*self.policies, Inputs(exclude=[other])],
            key_storage=self.key_storage, isolation_level=self.isolation_level,
            lock_manager=self.lock_manager,
        )


@dataclasses.dataclass
class NoCache(CachePolicy):
    """No key: runs are never looked up. ``cache_policy=None`` means the same.

    Example::

        @task(cache_policy=NO_CACHE)
        def now() -> float: return time.time()
    """

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return other


@dataclasses.dataclass
class TaskSource(CachePolicy):
    """The source text of the task's function (its bytecode when the source is missing).

    Only the function's own text counts, not the functions it calls.

    Example::

        @task(cache_policy=INPUTS + TASK_SOURCE)     # editing the body invalidates the cache
        def clean(path: str) -> str: ...
    """

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        fn = getattr(task_ctx, "task_fn", None)
        if fn is None:
            return None
        digest, _note = source_hash(fn)
        return digest


_source_cache: dict[Any, tuple[str, str | None]] = {}


def uses_flow_parameters(policy: CachePolicy) -> bool:
    """True when ``policy`` (or a part of it) hashes the flow run's parameters.

    Example::

        assert uses_flow_parameters(INPUTS + FLOW_PARAMETERS)
    """
    if isinstance(policy, CompoundPolicy):
        return any(uses_flow_parameters(p) for p in policy.policies)
    return isinstance(policy, FlowParameters) or not isinstance(
        policy, Inputs | TaskSource | RunId | NoCache | CacheKeyFnPolicy)


def source_hash(fn: Callable[..., Any]) -> tuple[str, str | None]:
    """:func:`hash_function_source`, memoized per function object (sources don't change in a run)."""
    found = _source_cache.get(fn)
    if found is None:
        found = _source_cache[fn] = hash_function_source(fn)
    return found


@dataclasses.dataclass
class FlowParameters(CachePolicy):
    """The parameters of the enclosing flow run (no key outside a flow or with none).

    Example::

        @task(cache_policy=FLOW_PARAMETERS)
        def setup() -> None: ...
    """

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if not flow_parameters:
            return None
        return hash_value(dict(flow_parameters))


@dataclasses.dataclass
class RunId(CachePolicy):
    """The id of the enclosing flow run, else the task run's own id.

    So ``DEFAULT`` caches within one flow run (a retried or resumed flow run with the
    same id finds its records) and never across flow runs.

    Example::

        @task(cache_policy=INPUTS + RUN_ID)
        def step(x: int) -> int: ...
    """

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        run_id = getattr(task_ctx, "flow_run_id", None)
        if run_id is None:
            run_id = getattr(task_ctx, "task_run_id", None)
        return None if run_id is None else str(run_id)


@dataclasses.dataclass
class Inputs(CachePolicy):
    """The run's parameters, hashed by the rules of ``_hashing`` (no key when there are none).

    ``exclude`` names parameters left out (``INPUTS - "token"``); parameters the run
    received wrapped in ``quote(...)`` are left out too. A value the rules cannot hash
    raises :class:`~taskrun._results._errors.UnhashableInput` naming the parameter.

    Example::

        @task(cache_policy=INPUTS - "api_token")
        def fetch(url: str, api_token: str) -> bytes: ...
    """

    exclude: list[str] = dataclasses.field(default_factory=list)

    def compute_key(
        self,
        task_ctx: Any,
        inputs: Mapping[str, Any] | None,
        flow_parameters: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if not inputs:
            return None
        quoted = getattr(task_ctx, "quoted", None)
        skip: Any = self.exclude if not quoted else {*self.exclude, *quoted}
        return hash_parameters(inputs, skip)

    def __sub__(self, other: str) -> CachePolicy:
        if not isinstance(other, str):
            raise _bad_sub(other)
        return dataclasses.replace(self, exclude=[*self.exclude, other])


def task_input_hash(context: Any, parameters: dict[str, Any]) -> str | None:
    """A ``cache_key_fn``: the task's identity, its code and its parameters.

    The identity is ``module.qualname`` of the task's function and the code its
    bytecode, so editing the body changes the key. Parameters hash by the rules of
    ``_hashing`` (deterministic across processes); returns None (no caching for this
    run) when a parameter cannot be hashed, as the seed engine's helper does.

    Example::

        @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
        def fetch(url: str) -> bytes: ...
    """
    fn = getattr(context, "task_fn", None)
    if fn is None:
        task = getattr(context, "task", None)
        fn = getattr(task, "fn", None)
    identity = "" if fn is None else f"{fn.__module__}.{fn.__qualname__}"
    code = getattr(fn, "__code__", None)
    try:
        return hash_objects(identity, b"" if code is None else code.co_code, dict(parameters))
    except UnhashableInput:
        return None


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
RUN_ID = RunId()
FLOW_PARAMETERS = FlowParameters()
NO_CACHE = NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
