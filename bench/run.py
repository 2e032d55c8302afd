"""Run the benchmarks of DESIGN §7, print the figures and record them in the docs.

    python -m bench.run                # both benchmarks; updates docs/benchmarks.md
    python -m bench.run --no-doc       # print only
    python -m bench.run --only calendar --runs 50

PostgreSQL is measured too when TEST_DATABASE_URL is set (a throw-away schema is used).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from bench import calendar_bench, import_bench, report
from bench.harness import Backend


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make bench``."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("import", "calendar"), help="run one benchmark")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="import rounds (default 5; 3 when PostgreSQL is measured too, to stay near 5 min)",
    )
    parser.add_argument("--runs", type=int, default=30, help="calendar runs (default 30)")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # library deprecation noise would interleave the log

    backends = Backend.available()
    _log("backends: " + ", ".join(b.name for b in backends))
    started = time.perf_counter()
    imports = calendar = None
    if args.only in (None, "import"):
        repeat = args.repeat or (5 if len(backends) == 1 else 3)
        imports = import_bench.run(backends, repeat, _log)
    if args.only in (None, "calendar"):
        calendar = calendar_bench.run(backends, args.runs, _log)
    _log(f"done in {time.perf_counter() - started:.0f} s")

    print(report.text_table(report.rows(imports, calendar)))
    print()
    for line in report.verdicts(imports, calendar):
        print(line.replace("**", ""))
    if not args.no_doc:
        if args.only is not None:
            _log("not updating docs/benchmarks.md: it records full runs only")
        else:
            info = report.machine(backends)
            path = report.write_doc(report.figures_section(info, imports, calendar))
            _log(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
