"""The seed-compatible options of ``DaskTaskRunner``: ``cluster=``, ``adapt_kwargs``,
``performance_report_path`` (checks, and the performance report's lifetime).

Example::

    DaskTaskRunner(cluster=my_cluster)                        # use it, leave it running
    DaskTaskRunner(adapt_kwargs={"minimum": 1, "maximum": 4})  # adaptive embedded cluster
    DaskTaskRunner(performance_report_path="report.html")      # written when the runner closes
"""

from __future__ import annotations

from typing import Any


def check_porting_options(address: Any, cluster_class: Any, cluster_kwargs: Any, cluster: Any,
                          adapt_kwargs: Any, performance_report_path: Any) -> None:
    if cluster is not None:
        if address is not None or cluster_class is not None or cluster_kwargs:
            raise ValueError(
                "give cluster= (an existing cluster object) alone, not with address=, "
                "cluster_class= or cluster_kwargs="
            )
        if not hasattr(cluster, "scheduler_address"):
            raise TypeError(
                f"cluster= must be a dask cluster object (e.g. distributed.LocalCluster), got {cluster!r}; "
                "for a scheduler address use address='tcp://host:8786'"
            )
    if adapt_kwargs is not None and not isinstance(adapt_kwargs, dict):
        raise TypeError(f"adapt_kwargs must be a dict, got {type(adapt_kwargs).__name__}")
    if adapt_kwargs:
        if address is not None or cluster is not None:
            raise ValueError("adapt_kwargs applies to a cluster the runner starts; drop address=/cluster=")
    if performance_report_path is not None and not isinstance(performance_report_path, str):
        raise TypeError(f"performance_report_path must be a str path, got {performance_report_path!r}")


def open_report(client: Any, path: str | None) -> Any:
    """Start a ``distributed.performance_report`` for ``client``'s scheduler, or None."""
    if path is None:
        return None
    import distributed  # noqa: PLC0415 - imported without Dask

    report = distributed.performance_report(filename=path)
    client.sync(report.__aenter__)
    return (client, report)


def close_report(handle: Any) -> None:
    """Write the report started by :func:`open_report` (no-op for None)."""
    if handle is None:
        return
    client, report = handle
    client.sync(report.__aexit__, None, None, None)


__all__ = ["check_porting_options", "open_report", "close_report"]
