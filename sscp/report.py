"""What `sscp train` and `sscp demo` print: the scores at each evaluation and, when training ends, one line per run
and where the run folder is."""

import math
import time

from sscp.envs import reports_success
from sscp.run_folder import CHECKPOINTS, CONFIG, CURVES, EVAL_CSV, ONLINE_CSV, TRAIN_CSV
from sscp.runlog import read_csv


def run(trainer) -> list[dict]:
    """Trains, then prints the final table and the run folder; returns the final evaluation."""
    start = time.perf_counter()
    results = trainer.train()
    wall = time.perf_counter() - start
    print_results(trainer, results, wall)
    return results


def without_success(runs) -> list[str]:
    """Returns the environments of `runs` that measure no success (Gymnasium's MuJoCo and classic-control ones),
    sorted: their success cells show "–" and their runs are compared by return."""
    return sorted({r.env_name for r in runs if r.env_name and not reports_success(r.env_name)})


def all_normalized(results: list[dict]) -> bool:
    """Returns whether every result has D4RL's normalised score (data with reference returns: D4RL, locomotion), the
    score those tasks are reported by, as their MuJoCo envs measure no success."""
    return all(not math.isnan(res.get("normalized_return", math.nan)) for res in results)


def evaluation_line(runs, results: list[dict], online: bool) -> str:
    """Returns the scores of one evaluation's progress line, one per run: the normalised return where the data has
    reference returns, the return where the environments measure no success, else the success (and the return too
    in online runs)."""
    if all_normalized(results):
        return "normalized " + " ".join(f"{res['normalized_return']:.1f}" for res in results)
    returns = "return " + " ".join(f"{res['return']:.1f}" for res in results)
    no_success = without_success(runs)
    if all(r.env_name in no_success for r in runs):
        return returns
    success = "success " + " ".join(f"{res['success']:.2f}" for res in results)
    return f"{success}, {returns}" if online else success


def success_note(no_success: list[str]) -> str:
    """Returns the line under a table that says which environments' "–" cells measure no success."""
    return f"(–: {', '.join(no_success)} report no success; compare the returns)"


def print_results(trainer, results: list[dict], wall: float) -> None:
    """Prints one line per run: task, seed, success, return, updates/s (env steps/s for online runs), wall time."""
    online = read_csv(trainer.run_dir / ONLINE_CSV)
    rows, key, label = (
        (online, "time/env_steps_per_sec", "env steps/s")
        if online
        else (read_csv(trainer.run_dir / TRAIN_CSV), "time/updates_per_sec", "updates/s")
    )
    speeds = [float(r[key]) for r in rows[len(trainer.runs) :]] or [float("nan")]  # the first row holds compiling
    ups = sorted(speeds)[len(speeds) // 2]
    # data with reference returns (D4RL, locomotion): its normalised score, as those tasks have no success measure
    normalized = all_normalized(results)
    score = "normalized" if normalized else "success"
    # environments without a success measure (Gymnasium's MuJoCo and classic-control ones): "–", compare returns
    no_success = without_success(trainer.runs)
    print(f"\n{'task':<44} {'seed':>4} {score:>10} {'return':>8} {label:>10} {'wall s':>8}")
    dashed = False  # a row shows "–" for an environment without a success measure
    for r, res in zip(trainer.runs, results, strict=True):
        value = res["normalized_return"] if normalized else res["success"]
        if math.isnan(res["success"]):
            shown, ret = "not evaluated", ""
        elif normalized:
            shown, ret = f"{value:.1f}", f"{res['return']:.1f}"
        else:
            shown = "–" if r.env_name in no_success else f"{value:.2f}"
            dashed |= shown == "–"
            ret = f"{res['return']:.1f}"
        speed = "–" if math.isnan(ups) else f"{ups:.0f}"
        print(f"{r.dataset:<44} {r.seed:>4} {shown:>10} {ret:>8} {speed:>10} {wall:>8.0f}")
    if normalized:
        print("(normalized: D4RL's score, 100 × (return − random) / (expert − random) with the dataset's reference "
              "returns)")  # fmt: skip
    if dashed:
        print(success_note(no_success))
    if trainer.no_eval is not None:
        print(f"(not evaluated: {trainer.no_eval})")
    if math.isnan(ups):
        print(f"({label}: only the first log row exists, and it includes compiling; log more rows for a speed)")
    names = (CONFIG, TRAIN_CSV, ONLINE_CSV, EVAL_CSV, CURVES, CHECKPOINTS)
    present = [n + ("/" if n == CHECKPOINTS else "") for n in names if (trainer.run_dir / n).exists()]
    print(f"\nrun folder: {trainer.run_dir} ({', '.join(present)})")
