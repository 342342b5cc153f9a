"""Functions run in spawned processes by the storage and lock tests (importable by the child)."""

from __future__ import annotations

import os
import time


def hammer(root: str, key: str, writer: int, rounds: int) -> None:
    from taskrun._results._records import encode_record
    from taskrun._results._storage import LocalStorage

    store = LocalStorage(root)
    for i in range(rounds):
        payload = (f"{writer}:{i}:".encode()) * (1000 + 37 * writer)
        store.write(key, encode_record(key, payload, serializer="pickle", task="t", expiration=None))


def read_all(root: str, key: str, rounds: int) -> int:
    from taskrun._results._records import decode_record
    from taskrun._results._storage import LocalStorage

    store = LocalStorage(root)
    seen = 0
    for _ in range(rounds):
        data = store.read(key)
        if data is not None:
            decode_record(data)  # raises on a torn record
            seen += 1
    return seen


def hold_file_lock(directory: str, key: str, ready_path: str, hold_seconds: float) -> None:
    from taskrun._results._locks import FileLockManager

    manager = FileLockManager(directory)
    assert manager.acquire(key, holder=f"proc-{os.getpid()}", timeout=5)
    with open(ready_path, "w") as f:
        f.write("locked")
    time.sleep(hold_seconds)
    manager.release(key, holder=f"proc-{os.getpid()}")


def serializable_run(root: str, key_param: int, log_path: str) -> int:
    """One SERIALIZABLE run through the service: executes at most once across processes."""
    import uuid

    from taskrun._results._policies import INPUTS
    from taskrun._results._service import results_config_from_options

    from .test_service import View, slow_square

    config = results_config_from_options(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"),
                                         result_storage=root)
    assert config is not None
    run = config.begin(View(task_fn=slow_square, parameters={"x": key_param}, task_name="slow_square",
                            task_run_id=uuid.uuid4()))
    with run.locked(timeout=20):
        hit = run.lookup()
        if hit is not None:
            return int(hit.value)
        value = slow_square(key_param, log_path)
        run.store(value)
        return value
