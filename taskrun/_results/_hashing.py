"""Deterministic value hashing for cache keys.

A key must be the same in every process, on every machine and in every Python run,
so nothing here uses ``hash()`` (salted per process for str and bytes) or pickle byte
streams (whose order follows a set's or dict's insertion history). Instead each value
is written into SHA-256 as a canonical, type-tagged and length-prefixed encoding:

==========================  ============================================================
value                       encoded as
==========================  ============================================================
``None``, ``True/False``    a tag of its own (so ``True`` and ``1`` differ)
``int``                     its decimal digits
``float``                   ``float.hex()`` (exact; ``1`` and ``1.0`` differ; every NaN
                            is the same)
``complex``, ``Decimal``,   their exact text forms
``Fraction``
``str``                     UTF-8 (``surrogatepass``)
``bytes``, ``bytearray``,   their bytes
``memoryview``
``list`` / ``tuple``        each item in order; a list and a tuple differ
``dict`` (any Mapping)      entries sorted by the digest of their key, so insertion order
                            does not matter and keys of mixed types are fine
``set`` / ``frozenset``     the sorted digests of the items
dataclass instance          class name, then ``(field name, value)`` in field order
``enum.Enum`` member        class name and the member's value
``datetime``, ``date``,     ISO text (an aware datetime keeps its UTC offset);
``time``, ``timedelta``     a timedelta its days, seconds and microseconds
``uuid.UUID``               its hex
``pathlib.PurePath``        its POSIX text
object with ``model_dump``  class name, then the hash of ``model_dump()`` (pydantic-like)
``numpy.ndarray``           dtype, shape and the C-ordered bytes (object arrays item by
                            item); NumPy scalars by dtype and bytes
``pandas`` DataFrame,       column labels, dtypes, index and values by content
Series, Index
object with                 the text it returns (how the engine hashes a future: by the
``__taskrun_hash__()``      key of the run that produced its value)
``taskrun.quote(x)``        a fixed marker: the value is left out of the key
==========================  ============================================================

Anything else raises :class:`~taskrun._results._errors.UnhashableInput`, naming the
parameter and where inside it the value sits. Class names are ``module.qualname``.
NumPy and pandas are never imported by this module: a value can only be one of their
types if the library is already loaded.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import hashlib
import inspect
import pathlib
import sys
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..annotations import quote
from ._errors import UnhashableInput

__all__ = ["hash_function_source", "hash_objects", "hash_parameters", "hash_value"]

_MAX_DEPTH = 200


def hash_value(value: Any, *, parameter_name: str | None = None) -> str:
    """The hex SHA-256 of ``value`` under the canonical rules of this module.

    Raises :class:`UnhashableInput` for a value the rules do not cover (or a
    container nested deeper than 200 levels, or one that contains itself).

    Example::

        assert hash_value({"a": 1, "b": [1, 2]}) == hash_value({"b": [1, 2], "a": 1})
    """
    return _Encoder(parameter_name).digest(value).hex()


def hash_objects(*values: Any) -> str:
    """The hex SHA-256 of several values, in order (a tuple of them).

    Example::

        key = hash_objects("my_task", {"x": 1})
    """
    return _Encoder(None).digest(values).hex()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _Encoder:
    __slots__ = ("_active", "_parameter")

    def __init__(self, parameter_name: str | None) -> None:
        self._parameter = parameter_name
        self._active: set[int] = set()

    def digest(self, value: Any) -> bytes:
        h = hashlib.sha256()
        self._encode(h, value, "", 0)
        return h.digest()

    def _fail(self, value: Any, path: str, reason: str = "") -> UnhashableInput:
        return UnhashableInput(self._parameter, _qualname(type(value)), path, reason)

    def _encode(self, h: Any, value: Any, path: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise self._fail(value, path, f"nested deeper than {_MAX_DEPTH} levels")
        kind = type(value)
        simple = _SIMPLE.get(kind)
        if simple is not None:
            tag, payload = simple(value)
            _put(h, tag, payload)
            return
        if kind in _PLAIN_CONTAINERS:
            self._encode_guarded(h, value, path, depth)
            return
        if isinstance(value, enum.Enum):
            _put(h, b"E", _qualname(kind).encode())
            self._encode(h, value.value, path, depth + 1)
            return
        for base, fn in _SIMPLE_BASES:
            if isinstance(value, base):
                tag, payload = fn(value)
                _put(h, tag, payload)
                return
        marker = getattr(value, "__taskrun_hash__", None)
        if marker is not None and callable(marker):
            text = marker()
            if not isinstance(text, str | bytes):
                raise self._fail(value, path, "__taskrun_hash__() must return str or bytes")
            _put(h, b"K", text.encode() if isinstance(text, str) else text)
            return
        if _is_quote(value):
            _put(h, b"Q", b"")
            return
        self._encode_guarded(h, value, path, depth)

    def _encode_guarded(self, h: Any, value: Any, path: str, depth: int) -> None:
        """:meth:`_encode_container`, failing on a value that contains itself."""
        ident = id(value)
        if ident in self._active:
            raise self._fail(value, path, "it contains itself")
        self._active.add(ident)
        try:
            self._encode_container(h, value, path, depth)
        finally:
            self._active.discard(ident)

    def _encode_container(self, h: Any, value: Any, path: str, depth: int) -> None:
        if isinstance(value, list | tuple):
            if isinstance(value, tuple) and hasattr(value, "_fields"):
                _put(h, b"n", _qualname(type(value)).encode())
            _put(h, b"l" if isinstance(value, list) else b"t", len(value).to_bytes(8, "big"))
            for i, item in enumerate(value):
                self._encode(h, item, f"{path}[{i}]", depth + 1)
            return
        if isinstance(value, Mapping):
            entries = []
            for k, v in value.items():
                sub = f"{path}[{k!r}]"
                entries.append((self._sub(k, sub, depth), self._sub(v, sub, depth)))
            entries.sort()
            _put(h, b"d", len(entries).to_bytes(8, "big"))
            for kd, vd in entries:
                h.update(kd)
                h.update(vd)
            return
        if isinstance(value, set | frozenset):
            digests = sorted(self._sub(item, f"{path}{{…}}", depth) for item in value)
            _put(h, b"s", len(digests).to_bytes(8, "big"))
            for d in digests:
                h.update(d)
            return
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            _put(h, b"D", _qualname(type(value)).encode())
            _put(h, b"#", len(fields).to_bytes(8, "big"))
            for f in fields:
                _put(h, b"f", f.name.encode())
                self._encode(h, getattr(value, f.name), f"{path}.{f.name}", depth + 1)
            return
        dump = getattr(value, "model_dump", None)
        if dump is not None and callable(dump) and not isinstance(value, type):
            _put(h, b"M", _qualname(type(value)).encode())
            self._encode(h, dump(), path, depth + 1)
            return
        module = type(value).__module__.partition(".")[0]
        if module == "numpy" and "numpy" in sys.modules:
            self._encode_numpy(h, value, path, depth)
            return
        if module == "pandas" and "pandas" in sys.modules:
            self._encode_pandas(h, value, path, depth)
            return
        raise self._fail(value, path)

    def _sub(self, value: Any, path: str, depth: int) -> bytes:
        h = hashlib.sha256()
        self._encode(h, value, path, depth + 1)
        return h.digest()

    def _encode_numpy(self, h: Any, value: Any, path: str, depth: int) -> None:
        np = sys.modules["numpy"]
        if isinstance(value, np.ndarray):
            _put(h, b"A", value.dtype.str.encode())
            _put(h, b"S", repr(tuple(value.shape)).encode())
            if value.dtype.hasobject:
                self._encode(h, value.tolist(), path, depth + 1)
            elif value.dtype.fields is not None:
                _put(h, b"R", repr(value.dtype.descr).encode())
                _put(h, b"b", np.ascontiguousarray(value).tobytes())
            else:
                _put(h, b"b", np.ascontiguousarray(value).tobytes())
            return
        if isinstance(value, np.generic):
            if value.dtype.hasobject:
                self._encode(h, value.item(), path, depth + 1)
                return
            _put(h, b"a", value.dtype.str.encode())
            _put(h, b"b", value.tobytes())
            return
        raise self._fail(value, path)

    def _encode_pandas(self, h: Any, value: Any, path: str, depth: int) -> None:
        pd = sys.modules["pandas"]
        try:
            if isinstance(value, pd.DataFrame):
                _put(h, b"P", b"frame")
                self._encode(h, [str(t) for t in value.dtypes], path, depth + 1)
                self._encode_pandas(h, value.columns, f"{path}.columns", depth + 1)
                self._encode_pandas(h, value.index, f"{path}.index", depth + 1)
                for i in range(value.shape[1]):
                    col = value.iloc[:, i]
                    _put(h, b"c", pd.util.hash_pandas_object(col, index=False).to_numpy().tobytes())
                return
            if isinstance(value, pd.Series):
                _put(h, b"P", b"series")
                self._encode(h, [value.name, str(value.dtype)], path, depth + 1)
                self._encode_pandas(h, value.index, f"{path}.index", depth + 1)
                _put(h, b"c", pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
                return
            if isinstance(value, pd.Index):
                _put(h, b"P", b"index")
                self._encode(h, [type(value).__name__, str(value.dtype), list(value.names)], path, depth + 1)
                _put(h, b"c", pd.util.hash_pandas_object(value).to_numpy().tobytes())
                return
        except TypeError as exc:
            raise self._fail(value, path, str(exc)) from exc
        raise self._fail(value, path)


def _put(h: Any, tag: bytes, payload: bytes) -> None:
    # tag, 8-byte length, payload. A small payload goes in one update of the joined bytes
    # (the same stream as three updates, so the same keys, for a third of the calls); a
    # large one (an array's buffer) is not copied to join it.
    size = len(payload)
    if size <= _JOIN_LIMIT:
        h.update(b"".join((tag, size.to_bytes(8, "big"), payload)))
    else:
        h.update(tag)
        h.update(size.to_bytes(8, "big"))
        h.update(payload)


_JOIN_LIMIT = 4096


def _float(value: float) -> tuple[bytes, bytes]:
    return b"g", (b"nan" if value != value else value.hex().encode())


def _datetime(value: datetime.datetime) -> tuple[bytes, bytes]:
    return b"w", value.isoformat().encode()


_SIMPLE: dict[type, Callable[[Any], tuple[bytes, bytes]]] = {
    type(None): lambda v: (b"N", b""),
    bool: lambda v: (b"T" if v else b"F", b""),
    int: lambda v: (b"i", str(v).encode()),
    float: _float,
    complex: lambda v: (b"j", f"{_float(v.real)[1].decode()},{_float(v.imag)[1].decode()}".encode()),
    str: lambda v: (b"u", v.encode("utf-8", "surrogatepass")),
    bytes: lambda v: (b"y", v),
    bytearray: lambda v: (b"y", bytes(v)),
    memoryview: lambda v: (b"y", v.tobytes()),
    decimal.Decimal: lambda v: (b"m", str(v).encode()),
    fractions.Fraction: lambda v: (b"q", f"{v.numerator}/{v.denominator}".encode()),
    datetime.datetime: _datetime,
    datetime.date: lambda v: (b"x", v.isoformat().encode()),
    datetime.time: lambda v: (b"z", v.isoformat().encode()),
    datetime.timedelta: lambda v: (b"v", f"{v.days},{v.seconds},{v.microseconds}".encode()),
    uuid.UUID: lambda v: (b"U", v.hex.encode()),
}

_SIMPLE_BASES: tuple[tuple[type, Callable[[Any], tuple[bytes, bytes]]], ...] = (
    (bool, _SIMPLE[bool]),
    (int, _SIMPLE[int]),
    (float, _float),
    (str, _SIMPLE[str]),
    (bytes, _SIMPLE[bytes]),
    (datetime.datetime, _datetime),
    (datetime.date, _SIMPLE[datetime.date]),
    (uuid.UUID, _SIMPLE[uuid.UUID]),
    (pathlib.PurePath, lambda v: (b"p", v.as_posix().encode())),
)


def _is_quote(value: Any) -> bool:
    return isinstance(value, quote)


_PLAIN_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})


def hash_parameters(parameters: Any, skip: Any = ()) -> str:
    """The key of a run's parameters: ``(name, value)`` pairs in name order, one SHA-256 pass.

    ``skip`` names parameters left out. Raises :class:`UnhashableInput` naming the parameter.

    Example::

        key = hash_parameters({"x": 1, "token": "s"}, skip={"token"})
    """
    h = hashlib.sha256(b"params\0")
    for name in sorted(parameters):
        if name in skip:
            continue
        _put(h, b"f", name.encode("utf-8", "surrogatepass"))
        value = parameters[name]
        simple = _SIMPLE.get(type(value))
        if simple is not None:  # _Encoder._encode's first case, without an encoder per parameter
            _put(h, *simple(value))
        else:
            _Encoder(name)._encode(h, value, "", 0)
    return h.hexdigest()


def hash_function_source(fn: Callable[..., Any]) -> tuple[str, str | None]:
    """Hash a function's source text; ``(digest, note)``.

    ``note`` is ``None`` when the source was found. When it is missing (a function
    made by ``exec``, a lambda typed at the REPL, a frozen module) the digest covers
    the function's bytecode, constants and names instead, recursively for nested code,
    and ``note`` says so: such a key changes with the Python version.

    Example::

        digest, note = hash_function_source(my_function)
    """
    target: Any = inspect.unwrap(fn)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        pass
    else:
        return hashlib.sha256(b"source\0" + source.encode("utf-8", "surrogatepass")).hexdigest(), None
    code = getattr(target, "__code__", None)
    if code is None:
        code = getattr(type(target).__call__, "__code__", None) if callable(target) else None
    if code is None:
        raise UnhashableInput(None, _qualname(type(fn)), "", "it has neither source text nor bytecode")
    h = hashlib.sha256(b"bytecode\0")
    _hash_code(h, code)
    name = getattr(target, "__qualname__", repr(target))
    return h.hexdigest(), (
        f"the source of {name} is not available; its key uses the bytecode, "
        "which changes between Python versions"
    )


def _hash_code(h: Any, code: types.CodeType) -> None:
    _put(h, b"c", code.co_code)
    _put(h, b"n", "\0".join(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(h, const)
        else:
            try:
                _put(h, b"k", bytes.fromhex(hash_value(const)))
            except UnhashableInput:
                _put(h, b"r", repr(const).encode())
