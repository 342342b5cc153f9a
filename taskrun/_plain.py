"""Plain values: the builtin scalars that hold no futures and pickle alike everywhere."""

from __future__ import annotations

#: Builtin scalar types; a parameters dict of only these needs no traversal,
#: no future resolution, and crosses to another process by plain ``pickle``.
PLAIN_SCALARS: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None)})

#: Types whose values can hold no futures, so traversal never looks inside.
LEAF_TYPES: frozenset[type] = PLAIN_SCALARS | {complex, range, bytearray}
