from __future__ import annotations

import datetime

import pytest

from taskrun._results._records import CorruptRecord, decode_record, encode_record


def make(payload: bytes = b"payload", expiration: datetime.timedelta | None = None) -> bytes:
    return encode_record("k1", payload, serializer="pickle", task="t", expiration=expiration, now=1000.0)


def test_round_trip_header_fields() -> None:
    header, payload = decode_record(make(expiration=datetime.timedelta(seconds=30)))
    assert payload == b"payload"
    assert (header.key, header.serializer, header.task, header.size) == ("k1", "pickle", "t", 7)
    assert header.created == 1000.0 and header.expires == 1030.0
    assert not header.expired(now=1029.9) and header.expired(now=1030.0)
    assert header.expires_at is not None and header.expires_at.year == 1970


def test_every_truncation_is_detected() -> None:
    data = make(b"x" * 100)
    for cut in range(len(data)):
        with pytest.raises(CorruptRecord):
            decode_record(data[:cut])


def test_flipped_payload_byte_fails_checksum() -> None:
    data = bytearray(make(b"abcdef"))
    data[-2] ^= 0x01
    with pytest.raises(CorruptRecord, match="checksum"):
        decode_record(bytes(data))


def test_garbage_and_other_versions() -> None:
    with pytest.raises(CorruptRecord, match="marker"):
        decode_record(b"not a record")
    with pytest.raises(CorruptRecord, match="unreadable"):
        decode_record(b"TASKRUN-RECORD 1\n{bad json\npayload")
    data = make().replace(b'"format":1', b'"format":9')
    with pytest.raises(CorruptRecord, match="version 9"):
        decode_record(data)
