"""The process pool runner: its runner, its pool of worker processes, and the worker."""
