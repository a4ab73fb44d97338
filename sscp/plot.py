"""Learning-curve PNGs from run folders' CSV logs, and the aggregate table across tasks (IQM with stratified
bootstrap confidence intervals) that `sscp plot` writes."""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from sscp.errors import ConfigError
from sscp.run_folder import CONFIG, CURVES, EVAL_CSV, ONLINE_CSV, TRAIN_CSV, upgrade
from sscp.runlog import read_csv
from sscp.stats import aggregate


def _series(rows: list[dict], key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Returns task → (steps, values [seeds, steps]) for one metric, keeping steps every seed has reached."""
    per_task: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get(key, "") != "":
            per_task[row["task"]][row["seed"]].append((int(row["step"]), float(row[key])))
    out = {}
    for task, seeds in per_task.items():
        n = min(len(v) for v in seeds.values())
        steps = np.array([s for s, _ in next(iter(seeds.values()))[:n]])
        out[task] = (steps, np.array([[x for _, x in v[:n]] for v in seeds.values()]))
    return out


def plot_run(run_dir: Path) -> Path:
    """Writes run_dir/curves.png: eval success (where evaluated) and the main training losses vs step, mean ± std over
    seeds; for runs with an online phase also the eval return and the online episodes' return (online.csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    evals, train = read_csv(run_dir / EVAL_CSV), read_csv(run_dir / TRAIN_CSV)
    online = read_csv(run_dir / ONLINE_CSV)
    panels = [("eval/success", evals, "success rate")] if evals else []
    if online:
        panels += [("eval/return", evals, "eval return"), ("episode/return", online, "online episode return")]
    losses = train or online
    keys = [k for k in (losses[0] if losses else {}) if k.startswith("train/") and k.endswith("loss")]
    panels += [(k, losses, k.removeprefix("train/")) for k in keys]
    if not panels:
        raise ValueError(f"{run_dir}: no eval.csv, train.csv or online.csv rows to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (key, rows, title) in zip(axes[0], panels, strict=True):
        series = _series(rows, key)
        for task, (steps, values) in series.items():
            mean, std = values.mean(0), values.std(0)
            ax.plot(steps, mean, label=task, marker="o" if key.startswith("eval") else None, markersize=3)
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("offline updates + env steps" if online else "gradient step")
        if key == "eval/success":
            ax.set_ylim(-0.02, 1.02)
        elif series and all((v > 0).all() for _, v in series.values()):
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    out = run_dir / CURVES
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# Train options that say where and how a run was logged or spread over devices, not what it learnt: folders that
# differ only in these (and in their datasets and seeds, which are told apart per task and run) are pooled.
_NOT_EXPERIMENT = ("dataset", "seeds", "run_dir", "data_dir", "progress", "plot", "tensorboard", "wandb", "wandb_mode",
                   "wandb_project", "eval_workers", "eval_slots", "devices")  # fmt: skip


def _config(run_dir: Path) -> dict:
    """Returns a run folder's train and agent options from its config.json, less _NOT_EXPERIMENT, as one flat dict
    ({"agent": "?"} when unreadable)."""
    try:
        record = upgrade(json.loads((run_dir / CONFIG).read_text()), run_dir / CONFIG)
        train = {k: v for k, v in record["train"].items() if k not in _NOT_EXPERIMENT}
        return {**record.get("agent", {}), **train}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigError):
        return {"agent": "?"}


def labels(run_dirs: list[Path]) -> tuple[dict[str, str], list[str]]:
    """Returns (run folder → the label its runs are pooled under, warnings): the label is the agent name, followed by
    the options in which the folder's config differs from other folders of that agent, so that runs of different
    configs are never pooled; a warning names those options per agent."""
    configs = {str(d): _config(Path(d)) for d in run_dirs}
    by_agent: dict[str, list[str]] = defaultdict(list)
    for folder, config in configs.items():
        by_agent[str(config.get("agent", "?"))].append(folder)
    out, warnings = {}, []
    for agent, folders in by_agent.items():
        keys = sorted({k for f in folders for k in configs[f]})
        differ = [k for k in keys if len({json.dumps(configs[f].get(k)) for f in folders}) > 1]
        for f in folders:
            options = ", ".join(f"{k}={json.dumps(configs[f].get(k))}" for k in differ)
            out[f] = f"{agent} ({options})" if differ else agent
        if differ:
            warnings.append(f"sscp plot: {agent} runs differ in {', '.join(differ)}: drawn and aggregated apart")
    return out, warnings


def collect(run_dirs: list[Path], metric: str) -> dict[tuple[str, str], dict[tuple[str, str], list[tuple[int, float]]]]:
    """Returns (label, task) → (run folder, seed) → [(step, value)] for one metric, read from the eval.csv,
    online.csv or train.csv of each run folder (the first that has the column); labels as `labels` gives them."""
    out: dict = defaultdict(lambda: defaultdict(list))
    names, _ = labels(run_dirs)
    for run_dir in map(Path, run_dirs):
        agent = names[str(run_dir)]
        for name in (EVAL_CSV, ONLINE_CSV, TRAIN_CSV):
            rows = read_csv(run_dir / name)
            if rows and metric in rows[0]:
                for row in rows:
                    if row[metric] != "":
                        out[(agent, row["task"])][(str(run_dir), row["seed"])].append(
                            (int(row["step"]), float(row[metric]))
                        )
                break
    return out


def metrics_of(run_dirs: list[Path]) -> list[str]:
    """Returns the default metrics to plot: eval/success, eval/return and eval/normalized_return where present."""
    found = set()
    for run_dir in map(Path, run_dirs):
        rows = read_csv(Path(run_dir) / EVAL_CSV)
        found |= set(rows[0]) if rows else set()
    return [m for m in ("eval/success", "eval/return", "eval/normalized_return") if m in found]


def curves(series: dict) -> list[tuple[str, list[int], np.ndarray, np.ndarray]]:
    """Returns (legend label, steps, mean, std) per line to draw: per (label, task) the mean ± std over its runs when
    they all logged the same steps, else each run on its own steps (a warning says so), so nothing is dropped."""
    lines = []
    for (agent, task), runs in sorted(series.items()):
        steps = {tuple(sorted(s for s, _ in points)) for points in runs.values()}
        seeds = len({seed for _, seed in runs})
        count = f"{seeds} seed{'s' * (seeds > 1)}"
        count = count if seeds == len(runs) else f"{len(runs)} runs of {count}"
        if len(steps) == 1:
            values = np.array([[v for _, v in sorted(points)] for points in runs.values()])
            lines.append((f"{agent} · {task} ({count})", list(next(iter(steps))), values.mean(0), values.std(0)))
            continue
        print(f"sscp plot: {agent} runs on {task} logged different steps: each drawn on its own", file=sys.stderr)
        for (folder, seed), points in sorted(runs.items()):
            run_steps, values = zip(*sorted(points), strict=True)
            label = f"{agent} · {task} · seed {seed} of {Path(folder).name}"
            lines.append((label, list(run_steps), np.array(values), np.zeros(len(values))))
    return lines


def plot_metric(series: dict, metric: str, out: Path) -> Path:
    """Writes one PNG of `metric` against step, the lines `curves` gives (mean shaded ± one standard deviation over
    runs where they share their steps); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, steps, mean, std in curves(series):
        ax.plot(steps, mean, marker="o", markersize=3, label=label)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean ± std over runs")
    ax.legend(fontsize=6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def final_scores(series: dict) -> dict[str, dict[str, np.ndarray]]:
    """Returns agent → task → the final value of every seed (the value at its last logged step)."""
    out: dict = defaultdict(dict)
    for (agent, task), seeds in series.items():
        out[agent][task] = np.array([max(points)[1] for points in seeds.values()])
    return out


def _with_ci(value: float, ci: tuple[float, float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def aggregate_table(series: dict, metric: str, reps: int = 10_000) -> tuple[str, list[dict]]:
    """Returns (markdown table, rows) aggregating each label's (agent's) final `metric` across tasks, from `collect`'s
    series: IQM and mean, each with a 95 % stratified bootstrap confidence interval (sscp.stats), plus the number of
    tasks and runs."""
    rows = []
    for agent, per_task in sorted(final_scores(series).items()):
        rows.append({"agent": agent, "metric": metric, **aggregate(per_task, reps)})
    lines = [
        f"| agent | tasks | runs | IQM of final {metric} [95 % CI] | mean [95 % CI] |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        iqm, mean = _with_ci(r["iqm"], r["iqm_ci"]), _with_ci(r["mean"], r["mean_ci"])
        lines.append(f"| {r['agent']} | {r['tasks']} | {r['runs']} | {iqm} | {mean} |")
    return "\n".join(lines), rows


def plot_runs(run_dirs: list[Path], metrics: list[str] | None, out: Path, reps: int = 10_000) -> list[Path]:
    """Writes `<out>/<metric>.png` (slashes as underscores) per metric and `<out>/aggregate.md` and `aggregate.json`
    with the IQM table of every metric; returns the paths written."""
    out = Path(out)
    metrics = metrics or metrics_of(run_dirs)
    if not metrics:
        raise ConfigError(
            f"no eval.csv rows in {', '.join(map(str, run_dirs))}; pass run folders written by sscp train"
        )
    written, tables, records = [], [], []
    for warning in labels(run_dirs)[1]:
        print(warning, file=sys.stderr)
    for metric in metrics:
        series = collect(run_dirs, metric)
        if not series:
            raise ConfigError(f"no run folder logs {metric!r}; columns are listed in the first line of each CSV")
        written.append(plot_metric(series, metric, out / f"{metric.replace('/', '_')}.png"))
        table, rows = aggregate_table(series, metric, reps)
        tables.append(table)
        records += rows
    (out / "aggregate.md").write_text("\n\n".join(tables) + "\n")
    (out / "aggregate.json").write_text(json.dumps(records, indent=2) + "\n")
    return [*written, out / "aggregate.md", out / "aggregate.json"]
