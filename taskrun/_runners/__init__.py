"""The runners: thread pool, process pool and Dask, on top of the engine."""
