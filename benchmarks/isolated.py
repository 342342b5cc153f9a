"""Workloads measured in fresh interpreters: memory per pending run, import time."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

from .config import Config
from .report import Result

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_memchild.py")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def _memory_once(system: str, n: int, timeout: float) -> dict[str, float]:
    proc = subprocess.run([sys.executable, CHILD, system, str(n)], capture_output=True, text=True,
                          timeout=timeout, env=_child_env())
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{system} memory child exited {proc.returncode}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(cfg: Config) -> list[Result]:
    """Bytes per pending run: taskrun (async map, all N runs blocked on one event)
    against bare asyncio tasks blocked on one event; one fresh process each, alternated."""
    n = cfg.mem_n
    timeout = 90 if cfg.quick else 240  # seconds per child; a few are normal
    tr, bare = [], []
    for _ in range(cfg.mem_reps):
        tr.append(_memory_once("taskrun", n, timeout))
        bare.append(_memory_once("asyncio", n, timeout))
    a = statistics.median(x["per_run"] for x in tr)
    b = statistics.median(x["per_run"] for x in bare)
    if a <= 0 or b <= 0:
        raise RuntimeError(f"no RSS growth measured (taskrun {a:.0f}, asyncio {b:.0f} B/run)")
    r = Result("memory", f"memory: {n:,} pending async runs / bare asyncio tasks", taskrun=a, baseline=b,
               unit="B/run", ratio=a / b, target=2000, must=3000, judge="taskrun",
               samples={"n": n, "taskrun": tr, "asyncio": bare})
    r.notes.append("peak RSS growth / N in a fresh process per measurement (method of "
                   "checks/mem_per_run.py); target and must apply to the taskrun bytes")
    return [r]


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_env(), timeout=60)
    return time.perf_counter() - start


def _importtime_breakdown() -> list[str]:
    """Self time of the modules ``import taskrun`` adds, summed by top-level package."""

    def modules(code: str) -> dict[str, int]:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                              text=True, check=True, env=_child_env(), timeout=60)
        out = {}
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _cumulative, name = line[len("import time:"):].split("|")
            out[name.strip()] = int(self_us)
        return out

    bare = modules("pass")
    added = {k: v for k, v in modules("import taskrun").items() if k not in bare}
    by_package: dict[str, int] = defaultdict(int)
    for name, us in added.items():
        by_package[name.split(".")[0]] += us
    total = sum(by_package.values())
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:6]
    parts = ", ".join(f"{pkg} {us / 1000:.1f}" for pkg, us in top)
    return [f"-X importtime: {len(added)} modules added, {total / 1000:.1f} ms self time; "
            f"largest by package (ms): {parts}"]


def bench_import(cfg: Config) -> list[Result]:
    """Wall time of ``python -c "import taskrun"`` minus ``python -c pass``, alternated."""
    _wall("import taskrun")  # warm-up: bytecode caches, page cache
    _wall("pass")
    with_import, bare = [], []
    for _ in range(cfg.import_reps):
        with_import.append(_wall("import taskrun"))
        bare.append(_wall("pass"))
    over = statistics.median(a - b for a, b in zip(with_import, bare, strict=True)) * 1000
    base = statistics.median(bare) * 1000
    r = Result("import", "import taskrun: ms over `python -c pass`", taskrun=over, baseline=base,
               unit="ms", ratio=statistics.median(with_import) * 1000 / base, target=100,
               judge="taskrun", samples={"import_s": with_import, "pass_s": bare})
    r.notes.append(f"median of {cfg.import_reps} alternated pairs; baseline column = bare interpreter "
                   "start-up; ratio = whole `import taskrun` process / bare")
    try:
        r.notes += _importtime_breakdown()
    except (subprocess.SubprocessError, ValueError) as exc:
        r.notes.append(f"-X importtime breakdown failed: {exc}")
    return [r]
