from __future__ import annotations

import builtins
import datetime
from typing import Any

import pytest

from taskrun._results._serializers import (
    CloudpickleSerializer,
    JSONSerializer,
    PickleSerializer,
    resolve_serializer,
    serializer_for_record,
    serializer_name,
)


def test_builtin_names_resolve_and_round_trip() -> None:
    value = {"a": [1, 2.5, None], "b": "x"}
    for name in ("pickle", "json", "cloudpickle", "PICKLE"):
        ser = resolve_serializer(name)
        assert ser.loads(ser.dumps(value)) == value
    assert isinstance(resolve_serializer(None), PickleSerializer)
    assert serializer_name(resolve_serializer("json")) == "json"


def test_pickle_handles_rich_values_and_cloudpickle_lambdas() -> None:
    ser = resolve_serializer("pickle")
    when = datetime.datetime(2024, 1, 1)
    assert ser.loads(ser.dumps({1, 2, when})) == {1, 2, when}
    cp = resolve_serializer("cloudpickle")
    assert cp.loads(cp.dumps(lambda x: x * 3))(2) == 6


def test_json_rejects_non_json_values() -> None:
    with pytest.raises(TypeError):
        JSONSerializer().dumps({1, 2})


def test_custom_serializer_object() -> None:
    class Upper:
        name = "upper"

        def dumps(self, value: str) -> bytes:
            return value.upper().encode()

        def loads(self, data: bytes) -> str:
            return data.decode()

    ser = resolve_serializer(Upper())
    assert ser.loads(ser.dumps("abc")) == "ABC"
    assert serializer_name(ser) == "upper"
    assert serializer_for_record("upper", ser) is ser
    assert serializer_for_record("other", ser) is None
    assert isinstance(serializer_for_record("json", ser), JSONSerializer)


@pytest.mark.parametrize(("value", "error", "match"), [
    ("yaml", ValueError, "not a known serializer"),
    (PickleSerializer, TypeError, "pass an instance"),
    (42, TypeError, "dumps"),
])
def test_bad_serializer_options(value: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        resolve_serializer(value)


def test_missing_cloudpickle_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "cloudpickle":
            raise ImportError("No module named 'cloudpickle'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"taskrun\[process\]"):
        CloudpickleSerializer()
