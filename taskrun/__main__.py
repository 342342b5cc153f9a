"""``python -m taskrun <command>``: ``cache`` (inspect and prune the result store) and ``report``."""

from __future__ import annotations

import importlib
import sys

from ._results._cli import main as cache_main

USAGE = (
    "usage: python -m taskrun {cache,report} ...\n"
    "  cache   ls | show KEY | clear [--task NAME] [--expired]\n"
)


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; returns the exit status.

    Example::

        python -m taskrun cache ls
    """
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "cache":
        return cache_main(rest)
    if command == "report":
        try:
            report = importlib.import_module("taskrun._observe._cli")
        except ImportError:
            sys.stderr.write("python -m taskrun report: this build of taskrun has no report command\n")
            return 2
        return int(report.main(rest))
    sys.stderr.write(f"python -m taskrun: unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
