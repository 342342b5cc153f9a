"""The engine: one task run as a coroutine, from admission to its final state.

Nothing here knows which runner called it; it reaches the core only through
the dispatcher's interface and the seam in ``taskrun._core._seam``.
"""
