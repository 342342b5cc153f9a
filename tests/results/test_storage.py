from __future__ import annotations

import multiprocessing
import os
import pathlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from taskrun._results._records import decode_record, encode_record
from taskrun._results._storage import (
    FsspecStorage,
    LocalStorage,
    check_key,
    default_storage,
    resolve_storage,
    taskrun_home,
)

from . import _workers


def record(key: str, payload: bytes) -> bytes:
    return encode_record(key, payload, serializer="pickle", task="t", expiration=None)


def test_default_store_is_under_taskrun_home(home: pathlib.Path) -> None:
    assert taskrun_home() == home
    store = default_storage()
    assert store.root == (home / "results").absolute()
    store.write("k", b"x")
    assert (home / "results" / "k").read_bytes() == b"x"


def test_taskrun_home_defaults_and_rejects_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKRUN_HOME", raising=False)
    assert taskrun_home() == pathlib.Path("~/.taskrun").expanduser()
    monkeypatch.setenv("TASKRUN_HOME", " ")
    with pytest.raises(ValueError, match="TASKRUN_HOME"):
        taskrun_home()


def test_local_read_write_delete_list(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path / "s")
    assert store.read("missing") is None and list(store.list()) == []
    store.write("a", b"1")
    store.write("dir/b", b"2")
    store.write("a", b"3")
    assert store.read("a") == b"3" and store.read("dir/b") == b"2"
    assert list(store.list()) == ["a", "dir/b"]
    assert store.delete("a") and not store.delete("a")
    assert [p.name for p in (tmp_path / "s").iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("bad", ["", "/abs", "../up", "a/../b", "a//b", ".hidden", "a\\b"])
def test_bad_keys_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        check_key(bad)


def test_failed_write_leaves_old_record_and_no_temporary(tmp_path: pathlib.Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStorage(tmp_path)
    store.write("k", b"old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write("k", b"new")
    assert store.read("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_concurrent_thread_writers_never_tear(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        for i in range(200):
            store.write("k", record("k", f"{n}-{i}".encode() * (500 + n)))

    def reader() -> None:
        while not stop.is_set():
            data = store.read("k")
            if data is not None:
                try:
                    decode_record(data)
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    r = threading.Thread(target=reader)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stop.set()
    r.join(30)
    assert errors == []
    decode_record(store.read("k") or b"")


def test_concurrent_process_writers_never_tear(tmp_path: pathlib.Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        writes = [pool.apply_async(_workers.hammer, (str(tmp_path), "k", n, 150)) for n in range(2)]
        reads = pool.apply_async(_workers.read_all, (str(tmp_path), "k", 600))
        for w in writes:
            w.get(60)
        assert reads.get(60) >= 0
    _header, payload = decode_record(LocalStorage(tmp_path).read("k") or b"")
    assert payload.startswith((b"0:149:", b"1:149:"))
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_resolve_storage_forms(tmp_path: pathlib.Path, home: pathlib.Path) -> None:
    assert resolve_storage(None) == LocalStorage(home / "results")
    assert resolve_storage(str(tmp_path)) == LocalStorage(tmp_path)
    assert resolve_storage(tmp_path) is resolve_storage(str(tmp_path))
    assert resolve_storage(f"file://{tmp_path}") == LocalStorage(tmp_path)
    assert isinstance(resolve_storage("memory://resolve-test"), FsspecStorage)

    class Mine:
        def read(self, key: str) -> bytes | None: return None
        def write(self, key: str, data: bytes) -> None: pass
        def delete(self, key: str) -> bool: return False
        def list(self) -> Iterator[str]: return iter(())

    mine = Mine()
    assert resolve_storage(mine) is mine
    with pytest.raises(TypeError, match="lacks delete, list"):
        resolve_storage(type("Half", (), {"read": lambda s, k: None, "write": lambda s, k, d: None})())
    with pytest.raises(ValueError, match="empty"):
        resolve_storage("")


def test_fsspec_memory_round_trip() -> None:
    store = FsspecStorage(f"memory://results-{uuid.uuid4().hex}/prefix")
    assert store.read("k") is None
    store.write("k", b"1")
    store.write("sub/j", b"2")
    assert store.read("k") == b"1" and store.read("sub/j") == b"2"
    assert list(store.list()) == ["k", "sub/j"]
    assert store.delete("k") and not store.delete("k")
    assert list(store.list()) == ["sub/j"]


# --- a real S3 API: moto's standalone server on loopback -------------------------------------------------

def test_s3_round_trip_through_moto_server(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    bucket, options = s3_bucket
    store = FsspecStorage(f"s3://{bucket}/prefix", **options)
    assert store.read("k") is None
    data = record("k", b"value" * 1000)
    store.write("k", data)
    store.write("nested/j", record("nested/j", b"j"))
    fresh = FsspecStorage(f"s3://{bucket}/prefix", **options)
    header, payload = decode_record(fresh.read("k") or b"")
    assert payload == b"value" * 1000 and header.key == "k"
    assert list(fresh.list()) == ["k", "nested/j"]
    assert fresh.delete("k") and fresh.read("k") is None
    assert list(fresh.list()) == ["nested/j"]
