from __future__ import annotations

import uuid

from taskrun._ids import new_uuid


def test_new_ids_are_distinct_version_4_uuids_like_the_uuid_module_makes() -> None:
    ids = [new_uuid() for _ in range(2000)]
    assert len(set(ids)) == 2000
    for made in ids:
        assert isinstance(made, uuid.UUID)
        assert made.version == 4 and made.variant == uuid.RFC_4122
        assert made == uuid.UUID(str(made)) == uuid.UUID(int=made.int, version=4)
        assert hash(made) == hash(uuid.UUID(made.hex)) and made.is_safe is uuid.SafeUUID.unknown
