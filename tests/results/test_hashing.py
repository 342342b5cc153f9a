from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import os
import pathlib
import subprocess
import sys
import threading
import uuid
from typing import Any, NamedTuple

import pytest

from taskrun._results._errors import UnhashableInput
from taskrun._results._hashing import hash_function_source, hash_objects, hash_parameters, hash_value
from taskrun.annotations import quote


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Pair(NamedTuple):
    a: int
    b: int


class Model:
    def __init__(self, **data: Any) -> None:
        self.data = data

    def model_dump(self) -> dict[str, Any]:
        return dict(self.data)


def test_dict_order_does_not_matter() -> None:
    assert hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
    assert hash_value({1: "x", "1": "y"}) == hash_value({"1": "y", 1: "x"})


def test_set_order_does_not_matter() -> None:
    items = [f"item{i}" for i in range(50)]
    assert hash_value(set(items)) == hash_value(set(reversed(items)))
    assert hash_value(frozenset({1, 2})) == hash_value(frozenset({2, 1}))


@pytest.mark.parametrize(("a", "b"), [
    (1, 1.0), (True, 1), (0, False), (None, 0), ("1", 1), (b"a", "a"), ([1, 2], (1, 2)),
    ([1, [2]], [[1], 2]), ({"a": 1}, [("a", 1)]), (Point(1, 2), (1, 2)), (Color.RED, 1),
    ({1, 2}, [1, 2]), ("ab", ["a", "b"]), (["ab", "c"], ["a", "bc"]), (Pair(1, 2), (1, 2)),
    (datetime.date(2024, 1, 2), "2024-01-02"), (0.1 + 0.2, 0.3),
])
def test_distinct_values_have_distinct_hashes(a: Any, b: Any) -> None:
    assert hash_value(a) != hash_value(b)


def test_supported_types_are_stable_and_equal_values_agree() -> None:
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    u = uuid.UUID(int=7)
    values = [None, True, 3, -2**80, 1.5, float("nan"), 2j, "héllo", b"\x00", bytearray(b"x"),
              [1, (2, {3})], {"k": [Point(1, 2)]}, Color.BLUE, when, datetime.timedelta(seconds=3), u,
              pathlib.PurePosixPath("a/b"), decimal.Decimal("1.10"), Model(a=1, b=[2])]
    for v in values:
        assert hash_value(v) == hash_value(v)
    assert hash_value(Model(a=1, b=[2])) == hash_value(Model(b=[2], a=1))
    assert hash_value(Model(a=1)) != hash_value(Model(a=2))
    assert hash_value(when) != hash_value(when.replace(tzinfo=None))


def test_known_digest_is_pinned() -> None:
    """A change of encoding changes every stored key: this pin makes it deliberate."""
    assert hash_value({"b": [1, 2.5, None], "a": "x"}) == hash_value({"a": "x", "b": [1, 2.5, None]})
    assert len(hash_value("x")) == 64
    digest = hash_objects("task", {"n": 1})
    assert digest == subprocess.run(
        [sys.executable, "-c", "from taskrun._results._hashing import hash_objects; "
         "print(hash_objects('task', {'n': 1}))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.strip()


def test_literal_digests_are_pinned() -> None:
    """Keys stored by earlier versions must still be found: these digests were computed before
    the hashing fast paths (one update per field, scalars without an encoder) went in."""
    mixed = {"x": 5, "name": "ab", "big": "a" * 10000, "items": [1, 2.5, None], "flag": True}
    assert hash_parameters(mixed) == "67e5fe3c9a69012bc7aaa487fdbfb970aab70c3a523bc3e0a42b9aff1245c638"
    assert hash_value({"b": [1, 2.5, None], "a": "x"}) == (
        "9f9ebebe26e7d2824e5082276d4cae55431b0fac71cc82f72a8611b62be5064a")
    assert hash_parameters({"data": b"z" * 5000}) == (
        "d1f95daa357367d772dd77edc435e8774356869b963396fbd0834ca62c9ded3b")


def test_same_digest_in_another_process_with_another_hash_seed() -> None:
    code = ("from taskrun._results._hashing import hash_value; "
            "print(hash_value({'s': {'a', 'b', 'c'}, 'f': frozenset({1.5, 'x'}), 'd': {('t', 1): b'z'}}))")
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1
    assert outs == {hash_value({"s": {"a", "b", "c"}, "f": frozenset({1.5, "x"}), "d": {("t", 1): b"z"}})}


def test_unhashable_names_parameter_and_path() -> None:
    with pytest.raises(UnhashableInput) as info:
        hash_value({"rows": [1, threading.Lock()]}, parameter_name="config")
    exc = info.value
    assert exc.parameter_name == "config"
    assert exc.path == "['rows'][1]"
    assert "lock" in exc.type_name.lower()
    assert "parameter 'config'" in str(exc)


def test_self_containing_list_is_unhashable() -> None:
    a: list[Any] = [1]
    a.append(a)
    with pytest.raises(UnhashableInput, match="contains itself"):
        hash_value(a)


def test_shared_but_acyclic_references_are_fine() -> None:
    inner = [1, 2]
    assert hash_value([inner, inner]) == hash_value([[1, 2], [1, 2]])


def test_quote_is_left_out() -> None:
    assert hash_value(quote(threading.Lock())) == hash_value(quote(object()))


def test_custom_taskrun_hash_marker() -> None:
    class Ref:
        def __init__(self, key: str) -> None:
            self.key = key

        def __taskrun_hash__(self) -> str:
            return self.key

    assert hash_value(Ref("a")) == hash_value(Ref("a"))
    assert hash_value(Ref("a")) != hash_value(Ref("b"))


def test_numpy_arrays_by_content() -> None:
    np = pytest.importorskip("numpy", reason="NumPy rules apply only when NumPy is installed")
    a = np.arange(12, dtype="int64").reshape(3, 4)
    assert hash_value(a) == hash_value(a.copy())
    assert hash_value(a) == hash_value(np.asfortranarray(a))
    assert hash_value(a) != hash_value(a.reshape(4, 3))
    assert hash_value(a) != hash_value(a.astype("int32"))
    b = a.copy()
    b[0, 0] = 99
    assert hash_value(a) != hash_value(b)
    assert hash_value(np.float64(1.5)) != hash_value(np.float32(1.5))
    objects = np.array([{"a": 1}, None], dtype=object)
    assert hash_value(objects) == hash_value(objects.copy())


def test_pandas_frames_by_content() -> None:
    pd = pytest.importorskip("pandas", reason="pandas rules apply only when pandas is installed")
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert hash_value(df) == hash_value(df.copy())
    assert hash_value(df) != hash_value(df.assign(a=[1, 2, 4]))
    assert hash_value(df) != hash_value(df.rename(columns={"a": "c"}))
    assert hash_value(df) != hash_value(df.set_index(pd.Index([5, 6, 7])))
    assert hash_value(df["a"]) == hash_value(df["a"].copy())
    assert hash_value(df["a"]) != hash_value(df["a"].astype("float64"))


def test_function_source_hash_and_bytecode_fallback() -> None:
    def f(x: int) -> int:
        return x + 1

    digest, note = hash_function_source(f)
    assert note is None and len(digest) == 64
    namespace: dict[str, Any] = {}
    exec("def g(x):\n    return x + 2\n", namespace)
    digest_g, note_g = hash_function_source(namespace["g"])
    assert note_g is not None and "bytecode" in note_g
    exec("def g(x):\n    return x + 3\n", namespace)
    assert hash_function_source(namespace["g"])[0] != digest_g
