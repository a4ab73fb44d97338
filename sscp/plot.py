"""Learning-curve PNGs from run folders' CSV logs, and the aggregate table across tasks (IQM with stratified
bootstrap confidence intervals) that `sscp plot` writes."""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from sscp.logging import read_csv


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
    evals, train = read_csv(run_dir / "eval.csv"), read_csv(run_dir / "train.csv")
    online = read_csv(run_dir / "online.csv")
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
    out = run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _agent(run_dir: Path) -> str:
    """Returns the agent name recorded in a run folder's config.json ("?" when unreadable)."""
    try:
        return str(json.loads((run_dir / "config.json").read_text())["train"]["agent"])
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def collect(run_dirs: list[Path], metric: str) -> dict[tuple[str, str], dict[tuple[str, str], list[tuple[int, float]]]]:
    """Returns (agent, task) → (run folder, seed) → [(step, value)] for one metric, read from the eval.csv,
    online.csv or train.csv of each run folder (the first that has the column)."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for run_dir in map(Path, run_dirs):
        agent = _agent(run_dir)
        for name in ("eval.csv", "online.csv", "train.csv"):
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
        rows = read_csv(Path(run_dir) / "eval.csv")
        found |= set(rows[0]) if rows else set()
    return [m for m in ("eval/success", "eval/return", "eval/normalized_return") if m in found]


def plot_metric(series: dict, metric: str, out: Path) -> Path:
    """Writes one PNG of `metric` against step: per (agent, task) the mean over seeds, shaded ± one standard
    deviation, at the steps every seed reached; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for (agent, task), seeds in sorted(series.items()):
        common = sorted(set.intersection(*[{s for s, _ in points} for points in seeds.values()]))
        if not common:
            continue
        values = np.array([[dict(points)[s] for s in common] for points in seeds.values()])
        mean, std = values.mean(0), values.std(0)
        ax.plot(common, mean, marker="o", markersize=3, label=f"{agent} · {task} ({len(seeds)} seeds)")
        ax.fill_between(common, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean ± std over seeds")
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


def aggregate_table(run_dirs: list[Path], metric: str, reps: int = 10_000) -> tuple[str, list[dict]]:
    """Returns (markdown table, rows) aggregating each agent's final `metric` across tasks: IQM and mean, each with a
    95 % stratified bootstrap confidence interval (sscp.stats), plus the number of tasks and runs."""
    from sscp.stats import aggregate

    rows = []
    for agent, per_task in sorted(final_scores(collect(run_dirs, metric)).items()):
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
    from sscp.errors import ConfigError

    out = Path(out)
    metrics = metrics or metrics_of(run_dirs)
    if not metrics:
        raise ConfigError(
            f"no eval.csv rows in {', '.join(map(str, run_dirs))}; pass run folders written by sscp train"
        )
    written, tables, records = [], [], []
    for metric in metrics:
        series = collect(run_dirs, metric)
        if not series:
            raise ConfigError(f"no run folder logs {metric!r}; columns are listed in the first line of each CSV")
        written.append(plot_metric(series, metric, out / f"{metric.replace('/', '_')}.png"))
        table, rows = aggregate_table(run_dirs, metric, reps)
        tables.append(table)
        records += rows
    (out / "aggregate.md").write_text("\n\n".join(tables) + "\n")
    (out / "aggregate.json").write_text(json.dumps(records, indent=2) + "\n")
    return [*written, out / "aggregate.md", out / "aggregate.json"]
