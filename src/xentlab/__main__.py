"""Command line: ``python -m xentlab {data,reports,notebooks,bench}``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    from xentlab.data import DATASETS
    from xentlab.profiles import PROFILES

    parser = argparse.ArgumentParser(prog="python -m xentlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch, verify and cache a dataset")
    data.add_argument("--dataset", choices=DATASETS, default="mnist10k")
    data.add_argument("--force", action="store_true", help="rebuild even if the cache is valid")

    rep = sub.add_parser("reports", help="run the notebooks with papermill into reports/<profile>/")
    rep.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    rep.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="e.g. 03 or 03_log_zero_collapse")
    rep.add_argument("--dataset", choices=DATASETS, help="override every notebook's dataset")
    rep.add_argument("--out", type=Path, help="output folder (default reports/<profile>/)")
    rep.add_argument("--no-html", action="store_true", help="skip the HTML export")

    nbs = sub.add_parser("notebooks", help="re-execute the committed notebooks in place")
    nbs.add_argument("--only", nargs="+", metavar="NOTEBOOK")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "data":
            from xentlab import data

            path = data.prepare(args.dataset, force=args.force)
            print(f"{args.dataset}: ready at {path}")
        elif args.command == "reports":
            from xentlab.reports import run_reports

            out = run_reports(
                args.profile, only=args.only, dataset=args.dataset, out=args.out,
                html=not args.no_html,
            )
            print(f"report written to {out}")
        elif args.command == "notebooks":
            from xentlab.reports import discover, execute_in_place, select

            execute_in_place(select(discover(), args.only))
    except (ValueError, RuntimeError) as err:  # DataError and ReportError are RuntimeErrors
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
