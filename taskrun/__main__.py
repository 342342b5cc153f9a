"""``python -m taskrun COMMAND``: ``report`` (run records to HTML / Chrome trace) and ``cache``
(inspect and prune the result store).

Example::

    python -m taskrun report runs.jsonl -o runs.html --chrome-trace runs.trace.json
    python -m taskrun cache ls
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._observe import _cli as _report_cli
from ._results import _cli as _cache_cli

_USAGE = (
    "usage: python -m taskrun {report,cache} ...\n"
    "  report  turn run records (TASKRUN_RECORD=runs.jsonl) into runs.html / a Chrome trace\n"
    "  cache   ls | show KEY | clear [--task NAME] [--expired]\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``report`` and ``cache``; exit status 2 (with the usage) for anything else."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "report":
        return int(_report_cli.main(rest))
    if command == "cache":
        return int(_cache_cli.main(rest))
    sys.stderr.write(f"python -m taskrun: unknown command {command!r}\n{_USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
