"""`python -m tests.faults [OPTIONS]`, from the repository root: runs the faults and writes their table."""

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from . import __doc__ as package_doc
from .lab import FAULTS, Lab
from .report import run_faults, table, write_report


def main(argv: list[str] | None = None) -> int:
    """Returns the exit status: 1 if a trial FAILED, else 0 (after writing the table into --out)."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=package_doc.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per randomised fault (default 5)")
    parser.add_argument("--out", default="docs/reliability.md", help="markdown file to write the table into")
    parser.add_argument("--only", nargs="+", choices=FAULTS, default=list(FAULTS), help="faults to run (default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choices (kill points, bytes, steps)")
    parser.add_argument("--work-dir", help="keep the run folders here (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    command = "python -m tests.faults " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(args.work_dir) if args.work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        lab = Lab(work)
        rows = run_faults(lab, args.only, args.trials, args.seed)
        for row in rows:  # run folders are temporary: name them relative to the work folder
            row.notes = [note.replace(str(work), "<work>") for note in row.notes]
    seconds = time.perf_counter() - start
    block = table(rows, command.strip(), seconds)
    write_report(Path(args.out), block)
    print(f"\n{block}\nwrote {args.out}")
    failed = sum(r.failed for r in rows)
    if failed:
        print(f"{failed} trial(s) FAILED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
