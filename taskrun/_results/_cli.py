"""``python -m taskrun cache ls | show KEY | clear [--task NAME] [--expired]``.

Every command takes ``--storage PATH_OR_URL`` (default: ``$TASKRUN_HOME/results``).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from typing import Any, TextIO

from ._records import CorruptRecord, RecordHeader, decode_header, decode_record
from ._serializers import serializer_for_record
from ._storage import LocalStorage, resolve_storage

__all__ = ["main"]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    text = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text} (expired)" if ts <= now else text


def _records(storage: Any) -> list[tuple[str, int, RecordHeader | None]]:
    found: list[tuple[str, int, RecordHeader | None]] = []
    for key in storage.list():
        data = storage.read(key)
        if data is None:
            continue
        try:
            header, _ = decode_header(data)
        except CorruptRecord:
            found.append((key, len(data), None))
            continue
        found.append((key, len(data), header))
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taskrun cache",
                                     description="Inspect and prune the result store.")
    parser.add_argument("--storage", help="a directory or fsspec URL (default: $TASKRUN_HOME/results)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ls", help="list records with their task, size and expiration")
    show = sub.add_parser("show", help="print one record's header and value")
    show.add_argument("key")
    clear = sub.add_parser("clear", help="delete records (all, or those matching the filters)")
    clear.add_argument("--task", help="only records written by this task")
    clear.add_argument("--expired", action="store_true", help="only expired (and corrupt) records")
    return parser


def main(argv: list[str], out: TextIO | None = None) -> int:
    """Run a ``cache`` subcommand; return the exit status (0 ok, 1 not found, 2 usage).

    Example::

        main(["ls"])
    """
    out = sys.stdout if out is None else out
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        storage = resolve_storage(args.storage)
    except (ValueError, TypeError, ImportError) as exc:
        sys.stderr.write(f"python -m taskrun cache: {exc}\n")
        return 2
    now = time.time()
    if args.command == "ls":
        rows = _records(storage)
        print(f"{'KEY':<66} {'TASK':<24} {'SIZE':>10}  {'CREATED':<19}  EXPIRES", file=out)
        total = 0
        for key, size, header in rows:
            total += size
            if header is None:
                print(f"{key:<66} {'?':<24} {_size(size):>10}  {'-':<19}  corrupt", file=out)
                continue
            print(f"{key:<66} {header.task or '-':<24} {_size(size):>10}  {_when(header.created, 0):<19}  "
                  f"{_when(header.expires, now)}", file=out)
        print(f"{len(rows)} record(s), {_size(total)} in {storage!r}", file=out)
        return 0
    if args.command == "show":
        data = storage.read(args.key)
        if data is None:
            sys.stderr.write(f"no record {args.key!r} in {storage!r}\n")
            return 1
        try:
            header, payload = decode_record(data)
        except CorruptRecord as exc:
            print(f"key:        {args.key}\nstatus:     corrupt ({exc})\n"
                  f"size:       {_size(len(data))}", file=out)
            return 1
        print(f"key:        {header.key}\ntask:       {header.task}\nserializer: {header.serializer}\n"
              f"size:       {_size(len(data))} (payload {_size(header.size)})\n"
              f"created:    {_when(header.created, 0)}\nexpires:    {_when(header.expires, now)}\n"
              f"sha256:     {header.sha256}", file=out)
        serializer = serializer_for_record(header.serializer, None)
        if serializer is not None:
            try:
                text = repr(serializer.loads(payload))
            except Exception as exc:
                text = f"<cannot load: {type(exc).__name__}: {exc}>"
            print(f"value:      {text[:2000]}", file=out)
        return 0
    removed = 0
    freed = 0
    for key, size, header in _records(storage):
        if args.task is not None and (header is None or header.task != args.task):
            continue
        if args.expired and header is not None and not header.expired(now):
            continue
        if storage.delete(key):
            removed += 1
            freed += size
    if isinstance(storage, LocalStorage):
        storage.remove_stale_temporaries()
    print(f"removed {removed} record(s), {_size(freed)}", file=out)
    return 0
