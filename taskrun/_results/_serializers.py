"""Serializers: how a run's value becomes the payload of a record and back.

``result_serializer`` takes ``"pickle"`` (the default), ``"cloudpickle"`` (needs
``taskrun[process]``), ``"json"``, or any object with ``dumps(value) -> bytes`` and
``loads(bytes) -> value`` (its ``name`` attribute, else its class name, is written into
each record so a reader knows what made it).
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable

__all__ = ["CloudpickleSerializer", "JSONSerializer", "PickleSerializer", "Serializer",
           "resolve_serializer", "serializer_name"]


@runtime_checkable
class Serializer(Protocol):
    """What ``result_serializer`` accepts besides a name.

    Example::

        class Upper:
            name = "upper"
            def dumps(self, value: str) -> bytes: return value.upper().encode()
            def loads(self, data: bytes) -> str: return data.decode()
    """

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """The standard library's pickle, protocol 5.

    Example::

        assert PickleSerializer().loads(PickleSerializer().dumps([1])) == [1]
    """

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=5)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class CloudpickleSerializer:
    """cloudpickle (values holding lambdas, local classes…); needs ``taskrun[process]``.

    Example::

        CloudpickleSerializer().dumps(lambda x: x + 1)
    """

    name = "cloudpickle"

    def __init__(self) -> None:
        try:
            import cloudpickle  # noqa: PLC0415 - an optional extra
        except ImportError as exc:
            raise ImportError(
                'result_serializer="cloudpickle" needs the cloudpickle package: '
                "pip install 'taskrun[process]'"
            ) from exc
        self._cloudpickle = cloudpickle

    def dumps(self, value: Any) -> bytes:
        return self._cloudpickle.dumps(value, protocol=5)  # type: ignore[no-any-return]

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class JSONSerializer:
    """JSON text in UTF-8: readable records, for values made of dicts, lists, str and numbers.

    Example::

        assert JSONSerializer().dumps({"a": 1}) == b'{"a":1}'
    """

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


_BUILTIN: dict[str, type] = {
    "pickle": PickleSerializer,
    "cloudpickle": CloudpickleSerializer,
    "json": JSONSerializer,
}
_INSTANCES: dict[str, Any] = {}


def serializer_name(serializer: Any) -> str:
    """The name a serializer writes into records.

    Example::

        assert serializer_name(PickleSerializer()) == "pickle"
    """
    name = getattr(serializer, "name", None)
    if isinstance(name, str) and name:
        return name
    cls = type(serializer)
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_serializer(value: Any) -> Any:
    """Turn a ``result_serializer`` option into a serializer object, or raise a clear error.

    ``None`` means ``"pickle"``. Names are case-insensitive.

    Example::

        ser = resolve_serializer("json")
    """
    if value is None:
        value = "pickle"
    if isinstance(value, str):
        key = value.lower()
        cls = _BUILTIN.get(key)
        if cls is None:
            raise ValueError(
                f"result_serializer={value!r} is not a known serializer; use one of "
                f"{sorted(_BUILTIN)} or an object with dumps(value) -> bytes and loads(bytes) -> value"
            )
        inst = _INSTANCES.get(key)
        if inst is None:
            inst = _INSTANCES[key] = cls()
        return inst
    if isinstance(value, type):
        raise TypeError(
            f"result_serializer={value.__qualname__} is a class; pass an instance of it "
            f"(result_serializer={value.__qualname__}())"
        )
    if not (callable(getattr(value, "dumps", None)) and callable(getattr(value, "loads", None))):
        raise TypeError(
            f"result_serializer must be 'pickle', 'cloudpickle', 'json' or an object with "
            f"dumps(value) -> bytes and loads(bytes) -> value; got {value!r}"
        )
    return value


def serializer_for_record(name: str, configured: Any) -> Any | None:
    """The serializer that can read a record written by ``name``, or None if none can."""
    if serializer_name(configured) == name:
        return configured
    if name in _BUILTIN:
        try:
            return resolve_serializer(name)
        except ImportError:
            return None
    return None
