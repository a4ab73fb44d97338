"""Success table of several agents on the single-task variants of dataset families, from their run folders.

    python benchmarks/scores_table.py RUNS [--step N] [--json OUT.json]

RUNS holds one run folder per (agent, family), `RUNS/<agent>/<family>/eval.csv`, each with every task x seed of that
family vmapped (as `benchmarks/gpu/cube_scores.sh` makes them). The table compares every agent at the same number of
updates: by default the largest step that every run folder of the family has evaluated. Per task: the mean over
seeds ± the population std; the last row: the mean over the five tasks per seed, then mean ± std over seeds.
"""

import argparse
import csv
import json
import os
import sys
from collections import defaultdict

import numpy as np


def load(runs: str) -> dict[tuple[str, str], list[dict]]:
    """Returns {(agent, family): eval.csv rows} of every run folder under runs."""
    out = {}
    for agent in sorted(os.listdir(runs)):
        for family in sorted(os.listdir(os.path.join(runs, agent)) if os.path.isdir(os.path.join(runs, agent)) else []):
            path = os.path.join(runs, agent, family, "eval.csv")
            if os.path.exists(path):
                with open(path) as f:
                    out[(agent, family)] = list(csv.DictReader(f))
    return out


def updates_per_sec(runs: str, agent: str, family: str) -> float | None:
    """Median updates/s per run over train.csv's rows (each row: one jitted call of log_every updates)."""
    path = os.path.join(runs, agent, family, "train.csv")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        values = [float(r["time/updates_per_sec"]) for r in csv.DictReader(f) if r["run"] == "0"]
    return float(np.median(values[1:] if len(values) > 1 else values)) if values else None


def table(runs: str, step: int | None = None, order: list[str] | None = None) -> tuple[str, dict]:
    """Returns (markdown, a JSON-able record) of every family's table at a common step; agents in `order` first."""
    evals = load(runs)
    if order:
        rank = {agent: i for i, agent in enumerate(order)}
        evals = {k: evals[k] for k in sorted(evals, key=lambda k: (rank.get(k[0], len(order)), k))}
    if not evals:
        raise SystemExit(f"no eval.csv under {runs}/<agent>/<family>/")
    families = sorted({family for _, family in evals})
    lines, record = [], {}
    for family in families:
        agents = [agent for agent, fam in evals if fam == family]
        steps = [{int(r["step"]) for r in evals[(agent, family)]} for agent in agents]
        common = sorted(set.intersection(*steps)) if steps else []
        at = step if step is not None else (common[-1] if common else None)
        if at is None or at not in set.intersection(*steps):
            lines.append(f"## {family}: no step evaluated by every agent ({', '.join(agents)})\n")
            continue
        per = {}  # agent -> task -> [success per seed]
        for agent in agents:
            tasks = defaultdict(list)
            for r in evals[(agent, family)]:
                if int(r["step"]) == at:
                    tasks[r["task"]].append((int(r["seed"]), float(r["eval/success"])))
            per[agent] = {t: [s for _, s in sorted(v)] for t, v in sorted(tasks.items())}
        tasks = sorted({t for agent in agents for t in per[agent]})
        lines.append(f"### {family}-play, {at:,} updates per run\n")
        lines.append("| task | " + " | ".join(agents) + " |")
        lines.append("|---|" + "---|" * len(agents))
        for task in tasks:
            cells = []
            for agent in agents:
                s = per[agent].get(task)
                cells.append(f"{np.mean(s):.2f} ± {np.std(s):.2f}" if s else "–")
            lines.append(f"| {task.split('-singletask-')[-1].removesuffix('-v0')} | " + " | ".join(cells) + " |")
        overall = {}
        for agent in agents:
            seeds = np.array([per[agent][t] for t in tasks if t in per[agent]])  # tasks x seeds
            overall[agent] = seeds.mean(axis=0)
        lines.append(
            "| **all five** | "
            + " | ".join(f"**{overall[a].mean():.2f} ± {overall[a].std():.2f}**" for a in agents)
            + " |"
        )
        speeds = [updates_per_sec(runs, a, family) for a in agents]
        lines.append("| updates/s per run | " + " | ".join(f"{v:.0f}" if v else "–" for v in speeds) + " |\n")
        record[family] = {
            "step": at,
            "agents": {
                a: {
                    "tasks": per[a],
                    "overall_per_seed": overall[a].tolist(),
                    "updates_per_sec_per_run": speeds[i],
                }
                for i, a in enumerate(agents)
            },
        }
    return "\n".join(lines), record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs")
    parser.add_argument("--step", type=int, default=None, help="the step to compare at (default: the last common)")
    parser.add_argument("--agents", nargs="*", default=None, help="column order (default: alphabetical)")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.runs):
        sys.exit(f"error: {args.runs} is not a folder")
    text, record = table(args.runs, args.step, args.agents)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
