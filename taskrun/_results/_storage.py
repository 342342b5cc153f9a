"""Where records live: the embedded directory store, fsspec stores, and user objects.

``result_storage`` accepts:

- a path (``str`` or ``os.PathLike``): a :class:`LocalStorage` there;
- an fsspec URL (``"s3://bucket/prefix"``, ``"memory://cache"``, ``"gcs://…"``): an
  :class:`FsspecStorage` (needs ``taskrun[fsspec]``, plus ``taskrun[s3]`` for S3);
  ``file://`` URLs are local paths;
- any object with the :class:`ResultStorage` methods.

With no ``result_storage`` the store is ``$TASKRUN_HOME/results`` (``TASKRUN_HOME``
defaults to ``~/.taskrun``), looked up when a run first needs it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = ["FsspecStorage", "LocalStorage", "ResultStorage", "check_key", "default_storage",
           "resolve_storage", "taskrun_home"]

_TMP_MARK = ".tmp-"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
LOCK_DIR = ".locks"


@runtime_checkable
class ResultStorage(Protocol):
    """The storage protocol: four methods over opaque byte blobs named by keys.

    Keys are ``/``-separated relative names (no ``..``, no leading ``/``).
    ``write`` must be atomic: a concurrent ``read`` sees the old blob, the new one,
    or nothing, never a mix. ``read`` of a missing key returns None.

    Example::

        class DictStorage:
            def __init__(self): self.blobs = {}
            def read(self, key): return self.blobs.get(key)
            def write(self, key, data): self.blobs[key] = bytes(data)
            def delete(self, key): return self.blobs.pop(key, None) is not None
            def list(self): return iter(sorted(self.blobs))
    """

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, data: bytes) -> None: ...

    def delete(self, key: str) -> bool: ...

    def list(self) -> Iterator[str]: ...


def check_key(key: str) -> str:
    """Validate a record key; return it or raise ValueError naming the problem.

    Example::

        check_key("reports/2024.pkl")
    """
    if type(key) is str and _PLAIN_KEY.fullmatch(key) is not None:
        return key
    if not isinstance(key, str) or not key:
        raise ValueError(f"a record key must be a non-empty str, got {key!r}")
    if key.startswith("/") or "\\" in key or "\0" in key:
        raise ValueError(f"record key {key!r} must be a relative name with '/' separators")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts) or any(p.startswith(".") for p in parts):
        raise ValueError(f"record key {key!r} has an empty, '.', '..' or hidden part")
    return key


def taskrun_home() -> pathlib.Path:
    """``TASKRUN_HOME`` (``~`` expanded), else ``~/.taskrun``.

    Example::

        print(taskrun_home() / "results")
    """
    raw = os.environ.get("TASKRUN_HOME")
    if raw is not None and not raw.strip():
        raise ValueError("TASKRUN_HOME is set but empty; unset it or give it a directory")
    return pathlib.Path(raw if raw else "~/.taskrun").expanduser()


_READ_CHUNK = 64 * 1024
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)


class LocalStorage:
    """Records as files in a directory: one file per key, written atomically.

    A write goes to a temporary file in the same directory, is flushed and
    ``fsync``-ed, then renamed over the key with ``os.replace``, so readers in any
    thread or process see a whole old record, a whole new one or none. Two writers of
    one key both succeed; the last rename wins. (The directory itself is not
    ``fsync``-ed: after a power cut the newest records may be missing, never torn.)

    Example::

        store = LocalStorage("/tmp/cache")
        store.write("k", b"data")
        assert store.read("k") == b"data"
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root).expanduser().absolute()
        self._prefix = str(self.root) + os.sep
        self._made: set[str] = set()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStorage) and other.root == self.root

    def __hash__(self) -> int:
        return hash(("LocalStorage", self.root))

    def path(self, key: str) -> pathlib.Path:
        """The file that holds ``key``."""
        return pathlib.Path(self._file(key))

    def _file(self, key: str) -> str:
        key = check_key(key)
        return self._prefix + (key if os.sep == "/" else key.replace("/", os.sep))

    def read(self, key: str) -> bytes | None:
        # os.open + os.read: no buffered file object per read (half the cost of open() for
        # a small record, the common hit). One read takes a record up to _READ_CHUNK; a
        # shorter read is the end of the file (records are never written in place: a
        # writer renames a whole new file over the key).
        try:
            fd = os.open(self._file(key), _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            data = os.read(fd, _READ_CHUNK)
            if len(data) < _READ_CHUNK:
                return data
            parts = [data]
            while more := os.read(fd, _READ_CHUNK * 16):
                parts.append(more)
            return b"".join(parts)
        finally:
            os.close(fd)

    def write(self, key: str, data: bytes) -> None:
        final = self._file(key)
        parent, name = os.path.split(final)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        tmp = os.path.join(parent, f".{name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        try:
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, key: str) -> bool:
        try:
            os.unlink(self._file(key))
        except FileNotFoundError:
            return False
        return True

    def list(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = pathlib.Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                yield (rel / name).as_posix() if rel.parts else name

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files left by writers that died mid-write; return how many."""
        count = 0
        for dirpath, _dirs, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".") and _TMP_MARK in name:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))
                        count += 1
        return count


class FsspecStorage:
    """Records on any fsspec filesystem (S3, GCS, Azure, ``memory://``…).

    Each write is one ``pipe_file`` call, a single object put: object stores make the
    object visible whole or not at all. ``storage_options`` go to the filesystem
    (e.g. ``endpoint_url``, ``key``, ``secret`` for s3fs). Needs ``taskrun[fsspec]``
    (and ``taskrun[s3]`` for ``s3://``).

    Example::

        store = FsspecStorage("memory://results")
        store.write("k", b"data")
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            import fsspec  # noqa: PLC0415 - an optional extra
        except ImportError as exc:
            raise ImportError(
                f"result_storage={url!r} is an fsspec URL and needs fsspec: pip install 'taskrun[fsspec]'"
                " (and 'taskrun[s3]' for s3:// URLs)"
            ) from exc
        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as exc:
            raise ImportError(
                f"result_storage={url!r} needs a filesystem package for its scheme ({exc}); "
                "for s3:// install 'taskrun[s3]'"
            ) from exc
        self.url = url
        self.fs = fs
        self.root = str(root).rstrip("/")

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def read(self, key: str) -> bytes | None:
        try:
            data = self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            return None
        return bytes(data)

    def write(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), bytes(data))

    def delete(self, key: str) -> bool:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            return False
        return True

    def list(self) -> Iterator[str]:
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return
        prefix = self.root.lstrip("/") + "/"
        for path in sorted(found):
            rel = str(path).lstrip("/")
            rel = rel[len(prefix):] if rel.startswith(prefix) else rel
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            yield rel


_cache_lock = threading.Lock()
_by_spec: dict[tuple[str, str], Any] = {}


def resolve_storage(value: Any) -> Any:
    """Turn a ``result_storage`` option into a storage object (None → the default store).

    Example::

        store = resolve_storage("s3://bucket/prefix")
    """
    if value is None:
        return default_storage()
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if not isinstance(text, str):
            raise TypeError(f"result_storage path must be text, got {value!r}")
        if not text.strip():
            raise ValueError(
                "result_storage is an empty string; give a directory, an fsspec URL or a storage object")
        if text.startswith("file://"):
            return _cached(("local", str(pathlib.Path(text[len("file://"):]).expanduser().absolute())))
        if "://" in text:
            return _cached(("fsspec", text))
        return _cached(("local", str(pathlib.Path(text).expanduser().absolute())))
    missing = [m for m in ("read", "write", "delete", "list") if not callable(getattr(value, m, None))]
    if missing:
        raise TypeError(
            f"result_storage must be a path, an fsspec URL or an object with read(key) -> bytes | None, "
            f"write(key, data), delete(key) -> bool and list() -> iterator of keys; {value!r} lacks "
            f"{', '.join(missing)}"
        )
    return value


def _cached(spec: tuple[str, str]) -> Any:
    with _cache_lock:
        store = _by_spec.get(spec)
    if store is None:
        store = LocalStorage(spec[1]) if spec[0] == "local" else FsspecStorage(spec[1])
        with _cache_lock:
            store = _by_spec.setdefault(spec, store)
    return store


def default_storage() -> LocalStorage:
    """The embedded store, ``$TASKRUN_HOME/results``.

    Example::

        print(default_storage().root)
    """
    store: LocalStorage = _cached(("local", str((taskrun_home() / "results").absolute())))
    return store
