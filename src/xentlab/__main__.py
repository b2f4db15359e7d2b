"""Command line: ``python -m xentlab {data,reports,notebooks,readme,bench,reproduce-check,site-check}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from xentlab.data import DATASETS, DEFAULT_DATASET
    from xentlab.profiles import PROFILES

    parser = argparse.ArgumentParser(prog="python -m xentlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch, verify and cache a dataset")
    data.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET)
    data.add_argument("--force", action="store_true", help="rebuild even if the cache is valid")

    rep = sub.add_parser("reports", help="run the notebooks with papermill into reports/<profile>/")
    rep.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    rep.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="e.g. 03 or 03_log_zero_collapse")
    rep.add_argument("--dataset", choices=DATASETS, help="override every notebook's dataset")
    rep.add_argument("--out", type=Path, help="output folder (default reports/<profile>/)")
    rep.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="run N notebooks at once, each timing notebook alone afterwards (default 1)")
    rep.add_argument("--rebuild", action="store_true",
                     help="run nothing: rewrite claims.json, provenance.json, README.md and "
                          "summary.md of the report from its parts")

    nbs = sub.add_parser("notebooks", help="re-execute the committed notebooks in place")
    nbs.add_argument("--only", nargs="+", metavar="NOTEBOOK")

    sub.add_parser("readme", help="rewrite the README's generated sections from the reports")

    bench = sub.add_parser("bench", help="training throughput and cross-entropy cost benchmarks")
    bench.add_argument("--quick", action="store_true", help="finish in under two minutes")
    bench.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    bench.add_argument("--vocab", action="store_true",
                       help="instead: the chunked cross-entropy at vocabulary scale (xentlab.vocab; "
                            "--quick: notebook 10's ci sizes, else its paper grid, up to an hour)")

    check = sub.add_parser("reproduce-check",
                           help="run a profile twice and compare metrics and claims")
    check.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    check.add_argument("--only", nargs="+", metavar="NOTEBOOK")
    check.add_argument("--keep", type=Path, metavar="DIR",
                       help="keep the first run as a full report here (e.g. reports/ci)")

    site = sub.add_parser("site-check", help="check the built static site in headless Chromium")
    site.add_argument("site", type=Path, nargs="?", default=Path("build/site"),
                      help="the built site (make site; default build/site)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from xentlab import runtime

    args = _parser().parse_args(argv)
    runtime.set_tensorflow_environment()  # before any command loads TensorFlow
    try:
        if args.command == "data":
            import logging

            from xentlab import data

            if not data.log.handlers:  # data.py's messages, INFO and up, on stderr
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("[data] %(message)s"))
                data.log.addHandler(handler)
            data.log.setLevel(logging.INFO)
            path = data.prepare(args.dataset, force=args.force)
            print(f"{args.dataset}: ready at {path}")
        elif args.command == "reports":
            from xentlab.config import REPORTS_DIR
            from xentlab.reports import rebuild, run_reports

            if args.rebuild:
                out = args.out or REPORTS_DIR / args.profile
                rebuild(out, args.profile)
                print(f"report rebuilt from its parts in {out}")
            else:
                out = run_reports(args.profile, only=args.only, dataset=args.dataset, out=args.out,
                                  jobs=args.jobs)
                print(f"report written to {out}")
        elif args.command == "notebooks":
            from xentlab.reports import discover, execute_in_place, select_notebooks

            execute_in_place(select_notebooks(discover(), args.only))
        elif args.command == "readme":
            from xentlab import readme

            print("README.md " + ("rewritten" if readme.write() else "already up to date"))
        elif args.command == "bench":
            if args.vocab:
                from xentlab.vocab import main as vocab_main

                vocab_main(quick=args.quick, json_path=args.json)
            else:
                from xentlab.bench import main as bench_main

                bench_main(quick=args.quick, json_path=args.json)
        elif args.command == "reproduce-check":
            from xentlab.reports import reproduce_check

            differences = reproduce_check(args.profile, only=args.only, keep=args.keep)
            for line in differences:
                print(line)
            print(f"reproduce-check: {len(differences)} difference(s)")
            return 1 if differences else 0
        elif args.command == "site-check":
            from xentlab.browser import check_site

            if not (args.site / "README.html").exists():
                raise ValueError(f"no built site at {args.site}: run `make site` first")
            report = check_site(args.site)
            for line in report.problems:
                print(f"  {line}")
            print(f"site-check: {len(report.pages)} pages, {len(report.problems)} problem(s), search "
                  f"found {report.search_hits} result(s); screenshots: {', '.join(report.screenshots)}")
            return 0 if not report.problems and report.search_hits else 1
    except ValueError as err:  # bad arguments, found before anything ran
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # DataError, ReportError, a failing cell of `notebooks`, ...
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
