"""The crash test's script: map N cached tasks; each execution appends its input to a log.

usage: python resumable_map.py STORE MARKS OUT [N]

Every execution of the body appends ``x`` to MARKS (one line, O_APPEND), *before*
returning: a run killed after its body but before its record was written shows up
as an execution without a record. At the end, OUT gets the results and the number
of corrupt-record warnings as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

from taskrun import ThreadPoolTaskRunner, task
from taskrun._results._errors import CorruptRecordWarning
from taskrun.cache_policies import INPUTS, TASK_SOURCE


def main() -> int:
    store, marks, out = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000
    fd = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=store)
    def work(x: int) -> dict[str, int]:
        os.write(fd, f"{x}\n".encode())
        return {"x": x, "y": x * x + 1}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolTaskRunner(max_workers=8) as runner:
            values = runner.map(work, {"x": range(n)}).result()
    corrupt = sum(1 for w in caught if issubclass(w.category, CorruptRecordWarning))
    with open(out, "w") as f:
        json.dump({"values": values, "corrupt": corrupt}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
