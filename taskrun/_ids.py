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


def new_uuid() -> uuid.UUID:
    """A random version-4 UUID."""
    return uuid.UUID(int=_rng.getrandbits(128), version=4)
