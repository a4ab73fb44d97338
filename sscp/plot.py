"""Learning-curve PNGs from a run folder's CSV logs."""

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
    """Writes run_dir/curves.png: eval success and the main training losses vs step, mean ± std over seeds; for runs
    with an online phase also the eval return and the online episodes' return (online.csv)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    evals, train = read_csv(run_dir / "eval.csv"), read_csv(run_dir / "train.csv")
    online = read_csv(run_dir / "online.csv")
    panels = [("eval/success", evals, "success rate")]
    if online:
        panels += [("eval/return", evals, "eval return"), ("episode/return", online, "online episode return")]
    losses = train or online
    keys = [k for k in (losses[0] if losses else {}) if k.startswith("train/") and k.endswith("loss")]
    panels += [(k, losses, k.removeprefix("train/")) for k in keys]
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
