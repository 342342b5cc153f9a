"""``python -m taskrun COMMAND``: ``report`` (run records to HTML / Chrome trace) and ``cache``.

Example::

    python -m taskrun report runs.jsonl -o runs.html --chrome-trace runs.trace.json
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from ._observe import _cli as _report_cli

_USAGE = "usage: python -m taskrun {report,cache} ...\n" \
         "  report  turn run records (TASKRUN_RECORD=runs.jsonl) into runs.html / a Chrome trace\n" \
         "  cache   inspect and clear cached task results"


def _cache(argv: list[str]) -> int:
    try:
        # The cache room is optional here: loaded by name, only for this command.
        cli = importlib.import_module("taskrun._results._cli")
    except ImportError:
        print("taskrun cache: this taskrun has no result cache (taskrun._results is missing)",
              file=sys.stderr)
        return 2
    return int(cli.main(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``report`` and ``cache``; exit status 2 (with the usage) for anything else."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    command, rest = args[0], args[1:]
    if command == "report":
        return _report_cli.main(rest)
    if command == "cache":
        return _cache(rest)
    print(f"taskrun: unknown command {command!r}\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
