from __future__ import annotations

import pathlib
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun._results._storage import LocalStorage
from taskrun._results._transaction import StagedRecord
from taskrun.transactions import CommitMode, Transaction, get_transaction, transaction


def staged(store: LocalStorage, key: str, log: list[str] | None = None) -> StagedRecord:
    hooks_c = [lambda t: log.append(f"commit:{key}")] if log is not None else []
    hooks_r = [lambda t: log.append(f"rollback:{key}")] if log is not None else []
    return StagedRecord(store, key, key.encode(), "t", hooks_c, hooks_r)


def test_commit_writes_everything_then_runs_hooks(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    log: list[str] = []
    with transaction() as txn:
        assert get_transaction() is txn
        txn.stage(staged(store, "a", log))
        txn.stage(staged(store, "b", log))
        assert store.read("a") is None and txn.read_staged(store, "a") == b"a"
        txn.on_commit(lambda t: log.append(f"txn:{t.is_committed()}"))
    assert get_transaction() is None
    assert store.read("a") == b"a" and store.read("b") == b"b"
    assert log == ["commit:a", "commit:b", "txn:True"]
    assert txn.is_committed()


def test_error_commits_nothing_and_rolls_back_newest_first(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    log: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), transaction() as txn:
        txn.stage(staged(store, "a", log))
        txn.stage(staged(store, "b", log))
        raise RuntimeError("boom")
    assert list(store.list()) == []
    assert log == ["rollback:b", "rollback:a"]
    assert txn.is_rolled_back()


def test_nested_lazy_child_commits_with_parent(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    with transaction() as parent:
        parent.set("who", "parent")
        with transaction() as child:
            assert child.get("who") == "parent"
            child.stage(staged(store, "c"))
        assert store.read("c") is None
        assert parent.read_staged(store, "c") == b"c"
    assert store.read("c") == b"c"
    assert child.is_committed() and parent.is_committed()


def test_nested_eager_child_commits_on_its_own_exit(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    with pytest.raises(KeyError), transaction():
        with transaction(commit_mode="eager") as child:
            child.stage(staged(store, "e"))
        assert store.read("e") == b"e"
        raise KeyError("after")
    assert store.read("e") == b"e"


def test_failed_child_rolls_back_parent_even_if_caught(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    log: list[str] = []
    with transaction() as parent:
        parent.stage(staged(store, "p", log))
        try:
            with transaction() as child:
                child.stage(staged(store, "c", log))
                raise ValueError("child failed")
        except ValueError:
            pass
        assert parent.is_rolled_back()
    assert list(store.list()) == []
    assert log == ["rollback:c", "rollback:p"]


def test_commit_mode_off_rolls_back_at_the_end(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    with transaction(commit_mode=CommitMode.OFF) as txn:
        txn.stage(staged(store, "x"))
    assert store.read("x") is None and txn.is_rolled_back()
    with pytest.raises(ValueError, match="lazy"):
        transaction(commit_mode="sometimes")


def test_staging_after_the_end(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    log: list[str] = []
    with transaction() as done:
        pass
    done.stage(staged(store, "late", log))
    assert store.read("late") == b"late" and log == ["commit:late"]
    with pytest.raises(OSError), transaction() as failed:
        raise OSError
    failed.stage(staged(store, "dropped", log))
    assert store.read("dropped") is None and log[-1] == "rollback:dropped"


def test_enter_twice_and_bad_hook() -> None:
    txn = Transaction()
    with txn:
        pass
    with pytest.raises(RuntimeError, match="entered once"), txn:
        pass
    with pytest.raises(TypeError, match="callables"):
        Transaction().on_commit("nope")  # type: ignore[arg-type]


def test_failing_write_rolls_back(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(LocalStorage):
        def write(self, key: str, data: bytes) -> None:
            raise OSError("read-only")

    log: list[str] = []
    with transaction() as txn:
        txn.stage(staged(Broken(tmp_path), "k", log))
    assert txn.is_rolled_back() and log == ["rollback:k"]
    assert "rolling it back" in caplog.text


def test_hook_errors_are_logged_not_raised(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    def bad(t: Any) -> None:
        raise RuntimeError("hook broke")

    with transaction() as txn:
        txn.on_commit(bad)
    assert txn.is_committed() and "hook broke" in caplog.text


@pytest.mark.anyio
async def test_async_with_commits_on_a_worker_thread(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    async with transaction() as txn:
        assert get_transaction() is txn
        txn.stage(staged(store, "a"))
        async with transaction() as child:
            child.stage(staged(store, "b"))
        await anyio.lowlevel.checkpoint()
    assert get_transaction() is None
    assert store.read("a") == b"a" and store.read("b") == b"b"


@pytest.mark.anyio
async def test_async_with_error_rolls_back(tmp_path: pathlib.Path) -> None:
    store = LocalStorage(tmp_path)
    log: list[str] = []
    with pytest.raises(LookupError):
        async with transaction() as txn:
            txn.stage(staged(store, "a", log))
            raise LookupError
    assert store.read("a") is None and log == ["rollback:a"]
