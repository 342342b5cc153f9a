"""``python -m taskrun report runs.jsonl -o runs.html [--chrome-trace trace.json]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._chrome_trace import write_chrome_trace
from ._html import write_html
from ._recorder import read_records
from ._summary import Summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m taskrun report",
        description="Turn run records (JSON Lines from TASKRUN_RECORD=...) into an HTML report, "
                    "a Chrome trace, or a text summary.",
    )
    parser.add_argument("records", nargs="+", help="JSON Lines file(s) of run records")
    parser.add_argument("-o", "--output", help="write the HTML report here (e.g. runs.html)")
    parser.add_argument("--chrome-trace", metavar="PATH",
                        help="write a Chrome trace-event JSON file (opens in Perfetto)")
    parser.add_argument("--title", default=None, help="title of the HTML report")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print the summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``report`` command; returns the exit status (0 ok, 2 bad input).

    Example::

        main(["runs.jsonl", "-o", "runs.html", "--chrome-trace", "runs.trace.json"])
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.records and args.records[0] == "report":
        args.records = args.records[1:]
    if not args.records:
        print("taskrun report: give at least one runs.jsonl file", file=sys.stderr)
        return 2
    records = []
    try:
        for path in args.records:
            records.extend(read_records(path))
    except (OSError, ValueError) as exc:
        print(f"taskrun report: {exc}", file=sys.stderr)
        return 2
    try:
        if args.output:
            title = args.title or f"taskrun report: {', '.join(args.records)}"
            path = write_html(records, args.output, title=title)
            print(f"wrote {path} ({len(records)} runs)")
        if args.chrome_trace:
            path = write_chrome_trace(records, args.chrome_trace)
            print(f"wrote {path} (Chrome trace; open it in Perfetto)")
    except (OSError, ValueError) as exc:
        print(f"taskrun report: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(Summary(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
