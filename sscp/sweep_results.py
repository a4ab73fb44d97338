"""A sweep's records of its groups and its tables: how many processes each group took (attempts.jsonl), the line
printed when a group finishes, and results.csv (one row per run) and results.md (mean ± std over seeds per agent,
options and dataset), written from the groups' result.json files (docs/sweeps.md)."""

import csv
import io
from pathlib import Path

import numpy as np

from sscp import checkpoint
from sscp.envs import reports_success
from sscp.sweep_spec import Group

ATTEMPTS_FILE = "attempts.jsonl"


def attempts(group: Group, sweep_dir: Path) -> int:
    """Returns how many processes have started this group (across retries and restarts of the sweep)."""
    try:
        return len((sweep_dir / "runs" / group.key / ATTEMPTS_FILE).read_text().splitlines())
    except OSError:
        return 0


def report_group(record: dict, g: Group) -> None:
    """Prints the group's mean success (its return for envs without a success measure) and updates/s."""
    key = "success" if not g.envs or all(map(reports_success, g.envs)) else "return"
    score = np.mean([r[key] for r in record["runs"]])
    shown = f"{score:.2f}" if key == "success" else f"{score:.1f}"
    print(f"{g.key} seeds {list(g.seeds)}: {key} {shown}, {record['updates_per_sec']:.0f} updates/s", flush=True)


def write_tables(
    groups: list[Group], records: dict[str, dict | None], sweep_dir: Path, failures: dict[str, str]
) -> tuple[Path, Path]:
    """Writes results.csv (one row per run) and results.md (mean ± std over seeds per agent, options and dataset)
    from each group's finished result (records: group key -> result.json, None where unfinished)."""
    rows = []
    for g in groups:
        record = records[g.key]
        status = "finished" if record else failures.get(g.key, "not finished")
        base = {"agent": g.agent, "options": g.label.split("/seed")[0], "group": g.key, "status": status}
        base["attempts"] = attempts(g, sweep_dir)
        if record is None:
            for d in g.datasets or g.envs:
                for s in g.seeds:
                    rows.append({**base, "dataset": d, "seed": s})
            continue
        for run in record["runs"]:
            row = {**base, "dataset": run["dataset"], "seed": run["seed"]}
            row.update({k: v for k, v in run.items() if k not in ("dataset", "seed")})
            row.update(updates_per_sec=record["updates_per_sec"], train_s=record["train_s"], steps=record["steps"])
            rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    csv_path = sweep_dir / "results.csv"
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    checkpoint.write_atomic(csv_path, text.getvalue().encode())

    groups_envs = {e for g in groups for e in g.envs}
    cells: dict[tuple, list[dict]] = {}
    for row in rows:
        cells.setdefault((row["agent"], row["options"], row["dataset"]), []).append(row)
    lines = [
        "| agent | options | dataset | seeds | success | return | updates/s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (agent, options, dataset), members in cells.items():
        done = [m for m in members if m["status"] == "finished"]
        stat = [_mean_std([m[k] for m in done]) for k in ("success", "return")]
        if dataset in groups_envs and not reports_success(dataset):  # Gymnasium's envs: compare the returns
            stat[0] = "–"
        speed = f"{np.mean([m['updates_per_sec'] for m in done]):.0f}" if done else "—"
        states = sorted({m["status"].split(":")[0] for m in members})
        lines.append(
            f"| {agent} | {options} | {dataset} | {len(done)}/{len(members)} | {stat[0]} | {stat[1]} | {speed} "
            f"| {', '.join(states)} |"
        )
    summary = "\n".join(lines) + "\n"
    md_path = sweep_dir / "results.md"
    checkpoint.write_atomic(md_path, summary.encode())
    return csv_path, md_path


def _mean_std(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{np.mean(values):.3g} ± {np.std(values):.2g}" if len(values) > 1 else f"{values[0]:.3g}"
