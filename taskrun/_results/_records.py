"""The record format: one self-checking blob per key, the same on every storage.

A record is three parts::

    TASKRUN-RECORD 1\\n
    {"format": 1, "serializer": "pickle", "created": 1718000000.5, "expires": null,
     "size": 123, "sha256": "…", "task": "my_task", "key": "…"}\\n
    <size bytes of payload>

``created`` and ``expires`` are Unix times in seconds (``expires`` null: never).
A record whose magic line, header, size or checksum does not match is *corrupt*:
readers treat it as a miss, never as a value.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import time
from typing import Any

__all__ = ["FORMAT_VERSION", "CorruptRecord", "RecordHeader", "decode_record", "encode_record"]

FORMAT_VERSION = 1
MAGIC = b"TASKRUN-RECORD 1\n"
_MAX_HEADER = 64 * 1024
_MAGIC_LEN = len(MAGIC)
_decode_json = json.JSONDecoder().decode


class CorruptRecord(ValueError):
    """A record that cannot be trusted: torn, truncated, tampered with or not a record."""


@dataclasses.dataclass(frozen=True)
class RecordHeader:
    """What a record says about its payload.

    Example::

        header, payload = decode_record(data)
        print(header.task, header.size, header.expires_at)
    """

    key: str
    serializer: str
    created: float
    expires: float | None
    size: int
    sha256: str
    task: str | None

    def expired(self, now: float | None = None) -> bool:
        """True when the record has an expiration and it has passed."""
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    @property
    def created_at(self) -> datetime.datetime:
        """``created`` as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self.created, datetime.timezone.utc)

    @property
    def expires_at(self) -> datetime.datetime | None:
        """``expires`` as an aware UTC datetime, or None (never expires)."""
        if self.expires is None:
            return None
        return datetime.datetime.fromtimestamp(self.expires, datetime.timezone.utc)


def encode_record(
    key: str,
    payload: bytes,
    *,
    serializer: str,
    task: str | None,
    expiration: datetime.timedelta | None,
    now: float | None = None,
) -> bytes:
    """Build a record's bytes around ``payload``.

    Example::

        data = encode_record("k", b"...", serializer="pickle", task="t", expiration=None)
    """
    created = time.time() if now is None else now
    header = {
        "format": FORMAT_VERSION,
        "key": key,
        "serializer": serializer,
        "created": created,
        "expires": None if expiration is None else created + expiration.total_seconds(),
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "task": task,
    }
    return b"".join((MAGIC, json.dumps(header, separators=(",", ":")).encode(), b"\n", payload))


def decode_header(data: bytes) -> tuple[RecordHeader, int]:
    """Parse the header only: ``(header, offset of the payload)``; raises CorruptRecord."""
    if not data.startswith(MAGIC):
        raise CorruptRecord("it does not start with the record marker")
    end = data.find(b"\n", _MAGIC_LEN, _MAGIC_LEN + _MAX_HEADER)
    if end < 0:
        raise CorruptRecord("its header is unterminated")
    try:
        # json.loads(bytes) first sniffs the encoding; the header is UTF-8 by definition.
        raw: Any = _decode_json(data[_MAGIC_LEN:end].decode("utf-8"))
        header = RecordHeader(
            key=str(raw["key"]),
            serializer=str(raw["serializer"]),
            created=float(raw["created"]),
            expires=None if raw["expires"] is None else float(raw["expires"]),
            size=int(raw["size"]),
            sha256=str(raw["sha256"]),
            task=None if raw.get("task") is None else str(raw["task"]),
        )
        version = int(raw["format"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptRecord(f"its header is unreadable ({exc})") from exc
    if version != FORMAT_VERSION:
        raise CorruptRecord(f"it has format version {version}; this taskrun reads {FORMAT_VERSION}")
    return header, end + 1


def decode_record(data: bytes) -> tuple[RecordHeader, bytes]:
    """Split and verify a record: ``(header, payload)``; raises CorruptRecord.

    Example::

        header, payload = decode_record(storage.read(key))
    """
    header, start = decode_header(data)
    payload = data[start:]
    if len(payload) != header.size:
        raise CorruptRecord(f"its payload has {len(payload)} bytes, the header says {header.size}")
    if hashlib.sha256(payload).hexdigest() != header.sha256:
        raise CorruptRecord("its payload fails its SHA-256 checksum")
    return header, payload
