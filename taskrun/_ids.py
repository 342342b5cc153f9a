"""Random ids for runs, made without a system call each.

``uuid.uuid4()`` reads ``os.urandom`` for every id. In a busy process that call
lets go of the interpreter lock and must win it back (up to a switch interval
later, while worker threads run), which made ids the largest cost of recording
runs. The ids come from a generator seeded once from ``os.urandom`` (and again in
a forked child); they need to be unique, not unpredictable.

Example::

    run_id = new_uuid()   # a version-4 UUID
"""

from __future__ import annotations

import os
import random
import uuid

_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


# The version (4) and variant (RFC 4122) bits, as ``uuid.UUID(int=..., version=4)``
# sets them; setting them here spares that constructor's checks (a third of an id's cost).
_KEEP = ~((0xF000 << 64) | (0xC000 << 48))
_MARK = (4 << 76) | (0x8000 << 48)
_new = object.__new__
_set = object.__setattr__
_UUID = uuid.UUID
_UNKNOWN = uuid.SafeUUID.unknown


def new_uuid() -> uuid.UUID:
    """A random version-4 UUID."""
    made = _new(_UUID)
    _set(made, "int", (_rng.getrandbits(128) & _KEEP) | _MARK)
    _set(made, "is_safe", _UNKNOWN)
    return made
