"""The Dask runner: its runner, its future, and what runs on the worker.

Only ``_runner`` imports ``distributed``; the future and the worker side do not.
"""
