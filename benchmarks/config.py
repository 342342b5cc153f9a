"""Sizes and repetition counts of a quick and of a full run, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    quick: bool
    pairs: int                       # alternated pairs after the warm-up
    map_n: int = 20_000              # sync / async / trio map
    chain_n: int = 5_000
    diamonds: int = 1_000            # each: 1 root, fan-out 10, fan-in 1 (12 runs)
    io_n: int = 2_000
    io_sleep: float = 0.010
    io_workers: int = 100
    scale_sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    scale_small: int = 10_000        # the ratio is per-task cost at scale_sizes[-1] / at this
    scale_rounds: int = 3
    sync_curve_max: int = 100_000    # sync systems join the plot up to this size
    mem_n: int = 200_000
    mem_reps: int = 2
    import_reps: int = 15


def make_config(quick: bool, pairs: int | None = None) -> Config:
    if quick:
        return Config(quick=True, pairs=pairs or 3, diamonds=300,
                      scale_sizes=(1_000, 10_000, 100_000), sync_curve_max=10_000,
                      mem_n=50_000, mem_reps=1, import_reps=9)
    return Config(quick=False, pairs=pairs or 5)
