from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from taskrun import cache_policies
from taskrun._results._errors import UnhashableInput
from taskrun.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundPolicy,
    Inputs,
    IsolationLevel,
    MemoryLockManager,
    task_input_hash,
)

from ._views import View, double, view


def triple(x: int) -> int:
    return 3 * x


def key(policy: CachePolicy, v: View) -> str | None:
    return policy.compute_key(v, v.parameters, v.flow_parameters)


def test_public_module_exports_the_contract_names() -> None:
    for name in ("INPUTS", "TASK_SOURCE", "RUN_ID", "FLOW_PARAMETERS", "NO_CACHE", "DEFAULT", "CachePolicy"):
        assert name in cache_policies.__all__
        assert getattr(cache_policies, name) is not None


def test_inputs_depends_on_values_not_order() -> None:
    assert key(INPUTS, view(x=1, y=2)) == key(INPUTS, view(y=2, x=1))
    assert key(INPUTS, view(x=1)) != key(INPUTS, view(x=2))
    assert key(INPUTS, view()) is None


def test_inputs_minus_drops_a_parameter() -> None:
    policy = INPUTS - "token"
    assert isinstance(policy, Inputs) and policy.exclude == ["token"]
    assert key(policy, view(x=1, token="a")) == key(policy, view(x=1, token="b"))
    assert key(INPUTS, view(x=1, token="a")) != key(INPUTS, view(x=1, token="b"))
    assert INPUTS.exclude == []


def test_quoted_parameters_are_left_out() -> None:
    v1, v2 = view(x=1, lock=threading.Lock()), view(x=1, lock=threading.Lock())
    v1.quoted = v2.quoted = frozenset({"lock"})
    assert key(INPUTS, v1) == key(INPUTS, v2)


def test_unhashable_input_raises_naming_parameter() -> None:
    with pytest.raises(UnhashableInput) as info:
        key(INPUTS, view(x=1, lock=threading.Lock()))
    assert info.value.parameter_name == "lock"


def test_task_source_follows_the_function() -> None:
    assert key(TASK_SOURCE, view(double, x=1)) == key(TASK_SOURCE, view(double, x=2))
    assert key(TASK_SOURCE, view(double, x=1)) != key(TASK_SOURCE, view(triple, x=1))


def test_run_id_prefers_the_flow_run() -> None:
    v = view(x=1)
    assert key(RUN_ID, v) == str(v.task_run_id)
    v.flow_run_id = uuid.uuid4()
    assert key(RUN_ID, v) == str(v.flow_run_id)


def test_flow_parameters() -> None:
    v = view(x=1)
    assert key(FLOW_PARAMETERS, v) is None
    v.flow_parameters = {"day": "mon"}
    k1 = key(FLOW_PARAMETERS, v)
    v.flow_parameters = {"day": "tue"}
    assert k1 is not None and key(FLOW_PARAMETERS, v) != k1


def test_no_cache_gives_no_key_and_adds_as_identity() -> None:
    assert key(NO_CACHE, view(x=1)) is None
    assert NO_CACHE + INPUTS is INPUTS
    assert INPUTS + NO_CACHE is INPUTS


def test_default_is_inputs_source_and_run_id() -> None:
    assert isinstance(DEFAULT, CompoundPolicy)
    kinds = sorted(type(p).__name__ for p in DEFAULT.policies)
    assert kinds == ["Inputs", "RunId", "TaskSource"]
    flow = uuid.uuid4()
    a, b = view(x=1), view(x=1)
    a.flow_run_id = b.flow_run_id = flow
    assert key(DEFAULT, a) == key(DEFAULT, b)
    b.flow_run_id = uuid.uuid4()
    assert key(DEFAULT, a) != key(DEFAULT, b)


def test_compound_flattens_merges_inputs_and_subtracts() -> None:
    policy = (INPUTS - "a") + TASK_SOURCE + (INPUTS - "b")
    assert isinstance(policy, CompoundPolicy)
    inputs = [p for p in policy.policies if isinstance(p, Inputs)]
    assert len(inputs) == 1 and inputs[0].exclude == ["a", "b"]
    minus = DEFAULT - "x"
    v1, v2 = view(x=1, y=2), view(x=9, y=2)
    v2.task_run_id = v1.task_run_id
    assert key(minus, v1) == key(minus, v2)
    assert key(DEFAULT, v1) != key(DEFAULT, v2)
    assert TASK_SOURCE + RUN_ID - "x" is not None
    no_inputs = TASK_SOURCE + RUN_ID
    assert no_inputs - "x" is no_inputs


def test_compound_ignores_parts_without_key() -> None:
    policy = INPUTS + FLOW_PARAMETERS
    assert key(policy, view(x=1)) is not None
    assert key(INPUTS + FLOW_PARAMETERS, view()) is None


def test_subtract_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="parameter names"):
        INPUTS - 3  # type: ignore[operator]


def test_configure_copies_and_validates() -> None:
    manager = MemoryLockManager()
    p = INPUTS.configure(isolation_level="serializable", lock_manager=manager, key_storage="/tmp/x")
    assert p.isolation_level is IsolationLevel.SERIALIZABLE and p.lock_manager is manager
    assert INPUTS.isolation_level is None and INPUTS.lock_manager is None
    with pytest.raises(ValueError, match="READ_COMMITTED"):
        INPUTS.configure(isolation_level="DIRTY")
    with pytest.raises(TypeError, match="acquire"):
        INPUTS.configure(lock_manager=object())
    combined = p + TASK_SOURCE
    assert combined.isolation_level is IsolationLevel.SERIALIZABLE and combined.key_storage == "/tmp/x"
    with pytest.raises(ValueError, match="different isolation_levels"):
        p + TASK_SOURCE.configure(isolation_level="READ_COMMITTED")


def test_cache_key_fn_policy_receives_context_and_parameters() -> None:
    seen: list[Any] = []

    def fn(ctx: Any, params: dict[str, Any]) -> str:
        seen.append((ctx, params))
        return f"k{params['x']}"

    v = view(x=4)
    v.context = "CTX"
    assert key(CachePolicy.from_cache_key_fn(fn), v) == "k4"
    assert seen == [("CTX", {"x": 4})]
    with pytest.raises(TypeError, match="str or None"):
        key(CacheKeyFnPolicy(cache_key_fn=lambda c, p: 5), v)  # type: ignore[arg-type,return-value]


def test_task_input_hash() -> None:
    a = task_input_hash(view(double, x=1), {"x": 1})
    assert a == task_input_hash(view(double, x=1), {"x": 1})
    assert a != task_input_hash(view(triple, x=1), {"x": 1})
    assert a != task_input_hash(view(double, x=2), {"x": 2})
    assert task_input_hash(view(double), {"x": threading.Lock()}) is None
