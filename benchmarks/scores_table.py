"""Success tables of several agents (or agent variants) on the single-task variants of dataset families, from run
folders.

    python benchmarks/scores_table.py RUNS [--step N] [--agents A B ...] [--json OUT.json] [--ci]
    python benchmarks/scores_table.py SWEEP_FOLDER [--step N] [--only A B ...] [--json OUT.json]   # `sscp sweep --out`
    python benchmarks/scores_table.py TABLES.json [--ci] [--key KEY]    # render tables written earlier by --json
    python benchmarks/scores_table.py RUNS_A RUNS_B ... [...]           # the seeds of several folders, one table

Cells are success rates unless `--metric` names another eval.csv column (`eval/normalized_return` for the locomotion
datasets, `eval/return`): the table's heading then names it, its cells have one decimal, and its JSON keeps it.

RUNS holds one run folder per (label, family), `RUNS/<label>/<family>/eval.csv`, each with every task x seed of that
family vmapped (as `benchmarks/gpu/cube_scores.sh` and `bc_scores.sh` make them); a label is an agent name or any
variant name. Evaluations of the same checkpoint at another number of sampling steps (`sscp eval --sample-steps K`,
`eval_<step>_steps<K>.json` in the run folder) become rows "<label> k=K"; evaluations that `sscp eval` wrote at the
run's own sampling steps (`eval_<step>.json`) count as evaluations at that step, so a run stopped before its
in-training evaluation and evaluated afterwards from its checkpoint has a row too. Every row is compared at the same
number of updates (of env steps, for runs trained online from scratch: the table's "unit"): by default the largest
step that every run folder of the family has evaluated. Per task: the mean over seeds ± the population std; "all":
each seed's mean over the tasks, then mean ± std over seeds. With `--ci`
every cell is instead the mean and its 95 % bootstrap interval over seeds, "mean [low, high]": per task, seeds
resampled with replacement; "all", a stratified bootstrap (each task's seeds resampled separately, sscp.stats).
`--iqm` adds a column with the interquartile mean of all tasks x seeds and its stratified bootstrap interval
(sscp.stats.aggregate, as `sscp plot` reports it). `--paired A B` adds a line per family: row A minus row B seed by
seed (rows trained on the same seeds, such as a fine-tuned run and its offline-only control), the mean difference
and its 95 % bootstrap interval, which is narrower than the two rows' intervals when the pairs share their spread.

Several folders (run folders or sweep folders) make one set of tables: a row (label, family) found in more than one
takes the seeds of each, so seeds 4-7 run later by the same spec join seeds 0-3; a seed found twice at the compared
step is refused.

A JSON file whose tables sit under one of its keys (several result files keep them under "suites" or "datasets"
beside their metadata) is read with `--key KEY`; the first files' layout ("agents" for "rows",
"updates_per_sec_per_run" for "updates_per_sec") is read as well.

Goal-conditioned runs (`RUNS/<agent>/<dataset>/`, as `benchmarks/gpu/goal_conditioned.sh` makes them) have one
dataset each and its success per evaluation goal: their columns are goal1 ... goal5. `--summary` adds one table with
a row per family and a column per label ("all" of each).
"""

import argparse
import csv
import glob
import json
import os
import re
import sys
from collections import defaultdict

import numpy as np

from sscp.stats import aggregate, stratified_bootstrap_ci


def _task_name(dataset: str) -> str:
    """Returns the short task name of a dataset: task3 for ...-singletask-task3-v0 and ...-task3-demos-v0."""
    match = re.search(r"(task|goal)\d+", dataset)
    return match.group(0) if match else dataset


_SSCP_EVAL = re.compile(r"eval_(\d+)\.json$")
SUCCESS = "eval/success"  # the default metric; --metric picks another eval.csv column


def load(runs: str) -> dict[tuple[str, str], str]:
    """Returns {(label, family): run folder} of every run folder under runs that has an eval.csv or an
    eval_<step>.json; a sweep folder (`sscp sweep --out`, with its sweep.json) is read with load_sweep."""
    if os.path.exists(os.path.join(runs, "sweep.json")):
        return load_sweep(runs)
    out = {}
    for path in sorted(glob.glob(os.path.join(runs, "*", "*", "eval*"))):
        if os.path.basename(path) == "eval.csv" or _SSCP_EVAL.search(path):
            folder = os.path.dirname(path)
            out[(os.path.basename(os.path.dirname(folder)), os.path.basename(folder))] = folder
    return out


def load_sweep(sweep: str) -> dict[tuple[str, str], str]:
    """Returns {(label, dataset): run folder} of a sweep folder's groups, `runs/<agent>/<dataset>/<options>/`: the
    label is the group's options ("default", "actor_ema=0.005", ...), after its agent where the sweep has several;
    each dataset (a group's datasets vmapped in one folder, named after the first) is a table of its own."""
    found = []
    for path in sorted(glob.glob(os.path.join(sweep, "runs", "*", "*", "*", "eval*"))):
        if os.path.basename(path) == "eval.csv" or _SSCP_EVAL.search(path):
            folder = os.path.dirname(path)
            dataset_folder = os.path.dirname(folder)
            found.append((os.path.basename(os.path.dirname(dataset_folder)), os.path.basename(dataset_folder), folder))
    several = len({agent for agent, _, _ in found}) > 1
    return {
        (f"{agent} {os.path.basename(folder)}" if several else os.path.basename(folder), dataset): folder
        for agent, dataset, folder in found
    }


def _eval_csv(folder: str) -> list[dict]:
    """Returns the rows of the folder's eval.csv, then one row per run of each eval_<step>.json (in eval.csv's
    columns: step, task, seed and eval/<each number the file holds>)."""
    rows = []
    if os.path.exists(os.path.join(folder, "eval.csv")):
        with open(os.path.join(folder, "eval.csv")) as f:
            rows = list(csv.DictReader(f))
    for path in sorted(glob.glob(os.path.join(folder, "eval_*.json"))):
        if match := _SSCP_EVAL.search(path):
            with open(path) as f:
                rows += [
                    {"step": match.group(1), "task": r["dataset"], "seed": r["seed"]}
                    | {f"eval/{k}": v for k, v in r.items() if k not in ("dataset", "seed")}
                    for r in json.load(f)
                ]
    return rows


def updates_per_sec(folder: str) -> float | None:
    """Median updates/s per run over train.csv's rows (each row: one jitted call of log_every updates), or over
    online.csv's rows with updates for a run trained online from scratch."""
    online = _online_only(folder)
    path = os.path.join(folder, "online.csv" if online else "train.csv")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        values = [float(r["time/updates_per_sec"]) for r in csv.DictReader(f) if r["run"] == "0"]
    values = [v for v in values if v > 0] if online else values  # the random phase makes no updates
    return float(np.median(values[1:] if len(values) > 1 else values)) if values else None


def load_all(paths: list[str]) -> dict[tuple[str, str], list[str]]:
    """Returns {(label, family): [run folder, ...]} over the folders (load of each): a row in several folders has
    them all, in the order given."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in paths:
        for key, folder in load(path).items():
            out[key].append(folder)
    return dict(out)


def _merged_evals(label: str, family: str, folders: list[str]) -> list[dict]:
    """Returns the evaluation rows (_eval_csv) of one row's folders, each with its folder; a seed of a task that
    two folders evaluated at the same step is an error (merged folders must hold different seeds)."""
    rows, seen = [], {}
    for folder in folders:
        for r in _eval_csv(folder):
            key = (int(r["step"]), r["task"], int(r["seed"]))
            if key in seen and seen[key] != folder:
                raise SystemExit(
                    f"error: {label} {family}: seed {key[2]} at step {key[0]} is in {seen[key]} and in {folder}; "
                    "folders merged into one table must hold different seeds"
                )
            seen[key] = folder
            rows.append(r | {"_folder": folder})
    return rows


def gather(
    runs: str | list[str],
    step: int | None = None,
    order: list[str] | None = None,
    metric: str = SUCCESS,
    only: list[str] | None = None,
) -> dict:
    """Returns {family: {"step": N, "rows": {label: {"tasks": {task: [metric per seed]}, "updates_per_sec": v}}}}
    at the given or the last common step; rows in `order` first, the k=K rows after their own label; with `only`,
    just those labels (so a step that a dropped row never reached can still be compared). A metric other than
    success (eval.csv's column, e.g. eval/normalized_return) is recorded as the table's "metric". Several folders in
    `runs` merge their seeds (load_all)."""
    paths = [runs] if isinstance(runs, str) else list(runs)
    folders = load_all(paths)
    if not folders:
        raise SystemExit(f"no eval.csv under {' or '.join(paths)}/<label>/<family>/")
    if only is not None:
        missing = sorted(set(only) - {label for label, _ in folders})
        if missing:
            known = ", ".join(sorted({label for label, _ in folders}))
            raise SystemExit(
                f"error: --only {', '.join(missing)}: no such row under {' '.join(paths)} (it has: {known})"
            )
        folders = {key: folder for key, folder in folders.items() if key[0] in only}
    rank = {label: i for i, label in enumerate(order or [])}
    out = {}
    for family in sorted({family for _, family in folders}):
        labels = sorted((lb for lb, fam in folders if fam == family), key=lambda lb: (rank.get(lb, len(rank)), lb))
        evals = {lb: _merged_evals(lb, family, folders[(lb, family)]) for lb in labels}
        common = set.intersection(*({int(r["step"]) for r in evals[lb]} for lb in labels))
        at = step if step is not None else (max(common) if common else None)
        if at is None or at not in common:
            out[family] = {"step": None, "rows": {}, "labels": labels}
            continue
        rows = {}
        for lb in labels:
            tasks = defaultdict(list)
            for r in evals[lb]:
                if int(r["step"]) != at:
                    continue
                goals = sorted((k for k in r if k.startswith("eval/success_goal")), key=lambda k: int(k[17:]))
                if goals:  # a goal-conditioned run: a column per evaluation goal
                    for k in goals:
                        tasks[k[len("eval/success_") :]].append((int(r["seed"]), float(r[k])))
                else:
                    tasks[r["task"]].append((int(r["seed"]), _value(r, metric, r["_folder"])))
            speeds = [v for v in map(updates_per_sec, folders[(lb, family)]) if v is not None]
            speed = float(np.median(speeds)) if speeds else None
            rows[lb] = {"tasks": _by_seed(tasks), "updates_per_sec": speed}
            steps_files = (glob.glob(os.path.join(d, f"eval_{at}_steps*.json")) for d in folders[(lb, family)])
            for path in sorted(p for found in steps_files for p in found):
                k = int(re.search(r"_steps(\d+)\.json$", path).group(1))
                extra = defaultdict(list)
                with open(path) as f:
                    for r in json.load(f):
                        extra[r["dataset"]].append((int(r["seed"]), _value(r, metric, path)))
                rows[f"{lb} k={k}"] = {"tasks": _by_seed(extra), "updates_per_sec": speed}
        out[family] = {"step": at, "rows": rows} | ({} if metric == SUCCESS else {"metric": metric})
        # runs trained online from scratch: the table's step counts env steps, not updates
        if all(_online_only(d) for lb in labels for d in folders[(lb, family)]):
            out[family]["unit"] = "env steps"
    return out


def _online_only(folder: str) -> bool:
    """Whether the run folder trained online from scratch: an online log and no offline one."""
    return os.path.exists(os.path.join(folder, "online.csv")) and not os.path.exists(os.path.join(folder, "train.csv"))


def _value(row: dict, metric: str, where: str) -> float:
    """Returns the row's metric (an eval.csv column, or the same name without `eval/` in an `sscp eval` JSON)."""
    value = row.get(metric, row.get(metric.removeprefix("eval/")))
    if value in (None, ""):
        names = sorted(k for k in row if k not in ("step", "run", "task", "seed", "env", "dataset", "_folder"))
        raise SystemExit(f"error: {where} has no {metric} (it has: {', '.join(names)})")
    return float(value)


def _by_seed(tasks: dict[str, list[tuple[int, float]]]) -> dict[str, list[float]]:
    return {t: [s for _, s in sorted(v)] for t, v in sorted(tasks.items())}


def _mean(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1)


def _digits(table: dict) -> int:
    """Decimals of a table's cells: 2 for success rates, 1 for returns and normalised returns (0-100)."""
    return 2 if table.get("metric", SUCCESS).startswith(SUCCESS) else 1


def _cell(per_task: list[list[float]], ci: bool, digits: int = 2) -> str:
    """Returns "mean ± std" over seeds of the per-seed mean over the given tasks, or with ci "mean [low, high]", the
    95 % stratified bootstrap interval of the mean (each task's seeds resampled separately)."""
    per_seed = np.array(per_task).mean(axis=0)
    if not ci:
        return f"{per_seed.mean():.{digits}f} ± {per_seed.std():.{digits}f}"
    low, high = stratified_bootstrap_ci([np.asarray(t) for t in per_task], _mean)
    return f"{np.mean(per_task):.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _iqm_cell(tasks: dict[str, list[float]], digits: int = 2) -> str:
    """Returns "IQM [low, high]" of all tasks x seeds, with the 95 % stratified bootstrap interval."""
    result = aggregate(tasks)
    low, high = result["iqm_ci"]
    return f"{result['iqm']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def render(tables: dict, ci: bool = False, iqm: bool = False) -> str:
    """Returns one markdown table per family: a row per label, a column per task, then all tasks (with iqm, also
    their IQM) and updates/s."""
    lines = []
    for family, table in tables.items():
        if table["step"] is None:
            lines.append(f"## {family}: no step evaluated by every row ({', '.join(table['labels'])})\n")
            continue
        tasks = sorted({t for row in table["rows"].values() for t in row["tasks"]}, key=_task_name)
        step = table["step"]  # a number, or a text where rows were evaluated at different steps (said per row)
        digits, metric = _digits(table), f" ({table['metric']})" if "metric" in table else ""
        unit = table.get("unit", "updates")  # online runs from scratch: env steps
        lines.append(f"### {family}, {f'{step:,}' if isinstance(step, int) else step} {unit} per run{metric}\n")
        extra = " IQM |" if iqm else ""
        lines.append(
            "| agent | " + " | ".join(_task_name(t) for t in tasks) + f" | **all** |{extra} updates/s per run |"
        )
        lines.append("|---|" + "---|" * (len(tasks) + 2 + iqm))
        for label, row in table["rows"].items():
            cells = [_cell([s], ci, digits) if (s := row["tasks"].get(t)) else "–" for t in tasks]
            present = {t: row["tasks"][t] for t in tasks if t in row["tasks"]}
            every = f"**{_cell(list(present.values()), ci, digits)}**" + (
                f" | {_iqm_cell(present, digits)}" if iqm else ""
            )
            speed = row["updates_per_sec"]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {every} | {f'{speed:.0f}' if speed else '–'} |")
        lines.append("")
    return "\n".join(lines)


def render_paired(tables: dict, a: str, b: str) -> str:
    """Returns one line per family: the per-seed difference of row a minus row b (the same seeds, so a pair shares
    whatever the two runs have in common, such as an offline phase before a fine-tuned run and its control split),
    mean over tasks and seeds and its 95 % stratified bootstrap interval (each task's seed differences resampled)."""
    lines = []
    for family, table in tables.items():
        rows = table["rows"]
        missing = [label for label in (a, b) if label not in rows]
        if missing:
            shown, present = " or ".join(map(repr, missing)), ", ".join(map(repr, rows))
            sys.exit(f"error: --paired: {family} has no row {shown} (it has: {present})")
        if table["step"] is None:
            sys.exit(f"error: --paired: {family} has no step evaluated by every row")
        diffs = []
        for task, mine in rows[a]["tasks"].items():
            theirs = rows[b]["tasks"].get(task)
            if theirs is None or len(theirs) != len(mine):
                sys.exit(f"error: --paired: {family}/{task} has {len(mine)} seeds in {a}, "
                         f"{'none' if theirs is None else len(theirs)} in {b}; pairs need the same seeds")  # fmt: skip
            diffs.append(np.asarray(mine) - np.asarray(theirs))
        digits = _digits(table)
        low, high = stratified_bootstrap_ci(diffs, _mean)
        per_seed = np.mean(diffs, axis=0)
        lines.append(
            f"{family}: {a} − {b}, paired by seed: {np.mean(diffs):+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"
            f" (per seed {', '.join(f'{d:+.{digits}f}' for d in per_seed)})"
        )
    return "\n".join(lines) + "\n"


def render_summary(tables: dict, ci: bool = False) -> str:
    """Returns one markdown table: a row per family (and its step), a column per label, cells "all" mean ± std."""
    labels = []
    for table in tables.values():
        labels += [lb for lb in table["rows"] if lb not in labels]
    lines = ["| dataset | updates | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for family, table in tables.items():
        cells = []
        for lb in labels:
            row = table["rows"].get(lb)
            if row is None:
                cells.append("–")
                continue
            cells.append(_cell(list(row["tasks"].values()), ci, _digits(table)))
        step = table["step"]
        step = "–" if step is None else f"{step:,}" if isinstance(step, int) else step
        lines.append(f"| {family} | {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def read_tables(path: str, key: str | None = None) -> dict:
    """Returns the tables of a JSON file written by --json, or of the dict under its key, in gather's layout."""
    with open(path) as f:
        data = json.load(f)
    nested = [k for k, v in data.items() if isinstance(v, dict) and any(map(_is_table, v.values()))]
    if key is not None:
        if key not in nested:
            sys.exit(f"error: {path} has no tables under {key!r}; keys that hold tables: {', '.join(nested) or 'none'}")
        data = data[key]
    tables = {}
    for family, table in data.items():
        if not _is_table(table):
            continue
        rows = table["rows"] if "rows" in table else table["agents"]
        tables[family] = {k: v for k, v in table.items() if k != "agents"} | {
            "rows": {
                label: {
                    "tasks": row["tasks"],
                    "updates_per_sec": row.get("updates_per_sec", row.get("updates_per_sec_per_run")),
                }
                for label, row in rows.items()
            }
        }
    if not tables:
        sys.exit(f"error: {path} has no tables at its top level; give --key, one of: {', '.join(nested) or 'none'}")
    return tables


def _is_table(value) -> bool:
    return isinstance(value, dict) and "step" in value and ("rows" in value or "agents" in value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "runs", nargs="+", help="folders of run folders (several: their seeds merged), or one JSON file from --json"
    )
    parser.add_argument("--step", type=int, default=None, help="the step to compare at (default: the last common)")
    parser.add_argument("--agents", nargs="*", default=None, help="row order (default: alphabetical)")
    parser.add_argument("--only", nargs="+", default=None, help="with run folders: only these rows (labels)")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    parser.add_argument("--summary", action="store_true", help="also print a table of families x labels")
    parser.add_argument("--ci", action="store_true", help="cells: mean [95 %% bootstrap interval] instead of ± std")
    parser.add_argument("--iqm", action="store_true", help="add a column: IQM of all tasks x seeds [95 %% interval]")
    parser.add_argument("--key", default=None, help="with a JSON file: the key under which its tables are")
    parser.add_argument(
        "--paired", nargs=2, default=None, metavar=("A", "B"),
        help="also print row A minus row B per seed (same seeds), mean and 95 %% bootstrap interval, per family",
    )  # fmt: skip
    parser.add_argument(
        "--metric", default=SUCCESS, help="with run folders: the eval.csv column to tabulate (eval/normalized_return)"
    )
    args = parser.parse_args(argv)
    first = args.runs[0]
    if len(args.runs) == 1 and os.path.isfile(first) and first.endswith(".json"):
        tables = read_tables(first, args.key)
    elif all(os.path.isdir(path) for path in args.runs):
        tables = gather(args.runs, args.step, args.agents, args.metric, args.only)
    else:
        bad = next(path for path in args.runs if not os.path.isdir(path))
        sys.exit(f"error: {bad} is neither a folder of run folders nor a JSON file of tables (read alone)")
    print(render(tables, args.ci, args.iqm))
    if args.summary:
        print(render_summary(tables, args.ci))
    if args.paired:
        print(render_paired(tables, *args.paired))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(tables, f, indent=1)


if __name__ == "__main__":
    main()
