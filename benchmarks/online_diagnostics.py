"""Per-seed diagnostics of online runs from their online.csv: the collecting actions' spread, the critic's Q of the
visited states against their discounted Monte-Carlo return, and the collected episodes' length and return, each
averaged over the rows of the last WINDOW env steps before a run folder's final step (its last multiple of WINDOW),
or before --at STEP.
These are the `diagnostics` of the online JSON files in benchmarks/results/ (docs/online.md quotes them).

    python benchmarks/online_diagnostics.py RUNS [--window 10000] [--at STEP] [--json OUT.json]

RUNS is searched for run folders (any folder holding online.csv); each is named by its path under RUNS.
"""

import argparse
import json
import os
import sys

import numpy as np

from sscp.runlog import read_csv

COLUMNS = {
    "action_std": "train/action_std",
    "q_visited": "value/q_visited",
    "mc_return_visited": "value/mc_return_visited",
    "episode_length": "episode/length",
    "episode_return": "episode/return",
}


def diagnose(folder: str, window: int = 10_000, at: int | None = None) -> dict:
    """Returns {"final_step": N, "seeds": [...], name: [mean per seed, in that order]} for one run folder's online.csv,
    over the WINDOW env steps up to `at` (default: the folder's last multiple of WINDOW). A seed with no valid value of
    a column in the window (no finished episode, say) gets NaN there, so every list lines up with "seeds"."""
    rows = read_csv(os.path.join(folder, "online.csv"))  # a run still writing: its torn last line is skipped
    if not rows:
        raise SystemExit(f"error: {folder}/online.csv has no rows")
    end = at if at is not None else max(int(r["step"]) for r in rows) // window * window
    last = [r for r in rows if end - window < int(r["step"]) <= end]
    seeds = sorted({int(r["seed"]) for r in last})
    out = {"final_step": end, "seeds": seeds}
    for name, column in COLUMNS.items():
        by_seed: dict[int, list[float]] = {seed: [] for seed in seeds}
        for r in last:
            if r.get(column) not in (None, "", "nan"):
                by_seed[int(r["seed"])].append(float(r[column]))
        out[name] = [float(np.mean(by_seed[seed])) if by_seed[seed] else float("nan") for seed in seeds]
    return out


def gather(runs: str, window: int = 10_000, at: int | None = None) -> dict:
    """Returns {"what": ..., "groups": {folder under RUNS: diagnose(folder)}} for every run folder under RUNS."""
    folders = sorted(d for d, _, files in os.walk(runs) if "online.csv" in files)
    if not folders:
        raise SystemExit(f"error: no online.csv under {runs}")
    what = (
        f"per seed, the mean of online.csv's rows over the last {window:,} env steps before "
        + (f"step {at:,}" if at is not None else "each run folder's final step")
        + ": the collecting actions' spread (train/action_std), Q(s, a) of the visited states and actions (min over "
        "critics) and their discounted Monte-Carlo return, and the collected episodes' length and return"
    )
    return {"what": what, "groups": {os.path.relpath(d, runs): diagnose(d, window, at) for d in folders}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", help="a folder of online run folders (a sweep's runs/, or run folders side by side)")
    parser.add_argument("--window", type=int, default=10_000, help="env steps averaged before the final step")
    parser.add_argument("--at", type=int, default=None, help="the window's last env step (default: each final step)")
    parser.add_argument("--json", default=None, help="also write the diagnostics to this JSON file")
    args = parser.parse_args(argv)
    if args.window <= 0:
        sys.exit(f"error: --window must be positive, got {args.window}")
    diagnostics = gather(args.runs, args.window, args.at)
    for name, g in diagnostics["groups"].items():
        cells = "  ".join(f"{k} " + " ".join(f"{v:.4g}" for v in g[k]) for k in COLUMNS)
        print(f"{name} (to {g['final_step']:,}): {cells}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(diagnostics, f, indent=1)


if __name__ == "__main__":
    main()
