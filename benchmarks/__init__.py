"""taskrun's benchmark suite: ``python -m benchmarks [--quick] [--json FILE] [--plot FILE.png]``.

Every workload runs taskrun and its baseline alternately in one process (memory
and import time in fresh subprocesses) and reports medians and the median of
the per-pair ratios taskrun/baseline against the targets of issue 3. See
``benchmarks/README.md``.

Modules: ``cli`` (command line, workload list), ``config`` (sizes per mode),
``_timing`` (alternating pairs), ``systems`` (one timed function per system),
``workloads`` (in-process rows), ``isolated`` (memory and import time, in
subprocesses; child script ``_memchild.py``), ``parallel`` (rows from
``workloads_parallel``: process pool and Dask), ``report`` (table, JSON, plot).
"""
