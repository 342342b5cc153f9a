"""The event-loop core: loop hosting, the worker-thread bridge, slots, and the backend seam.

Nothing here knows about tasks; the engine (``taskrun._engine``) sits on top and
is reached through the one interface in ``_seam``.
"""
