"""Fault 1: SIGKILL of a training subprocess at random points, then a rerun that must resume exactly."""

import functools
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from .evidence import ckpt_steps, compare_runs, csv_steps, describe_stderr, stray_files
from .lab import KILL_STEPS, LOG_EVERY, SAVE_EVERY, Lab, Row, check


def _kill_at(proc: subprocess.Popen, run_dir: Path, target: int, delay: float, deadline: float) -> str | None:
    """Waits until train.csv has a row of step >= target, sleeps delay, then SIGKILLs proc; returns where the run
    stood at the kill ("checkpoint 300, train.csv at 350"), or None when it finished before."""
    while not (steps := csv_steps(run_dir)) or max(steps) < target:
        if proc.poll() is not None:
            return None
        check(time.monotonic() < deadline, f"no train.csv row of step {target} in time")
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    check(proc.wait() == -signal.SIGKILL, f"the run did not die of SIGKILL (exit {proc.returncode})")
    return f"checkpoint {max(ckpt_steps(run_dir), default='none')}, train.csv at {max(csv_steps(run_dir), default=0)}"


def _kill_delay(rng: np.random.Generator) -> float:
    """Returns 0 s half of the time, else 0-0.3 s. Evaluation and plotting take most of the wall time (50 updates take
    tens of ms here), so random delays nearly always kill there; no delay kills in the update chunk, checkpoint write
    or evaluation that follows the row of the target step."""
    return 0.0 if rng.uniform() < 0.5 else float(rng.uniform(0.0, 0.3))


def _launch(lab: Lab, cmd: list[str], run: Path, launch: int, target: int, delay: float) -> tuple[str | None, int]:
    """Starts launch number `launch` of cmd (output to a log file beside run) and kills it as _kill_at does; returns
    (where it was killed or None, its exit status)."""
    with open(run.parent / f"{run.name}.{launch}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=lab.env)
        try:
            where = _kill_at(proc, run, target, delay, time.monotonic() + 300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return where, proc.returncode


def _kill_launches(lab: Lab, rng: np.random.Generator, run: Path, cmd: list[str], targets: list[int]) -> list[str]:
    """Launches cmd and kills it once or twice (a random choice) after random target steps; returns where each kill
    landed. A launch that finishes before its first kill is started over with the earliest target and no delay."""
    kills, target, delay = int(rng.integers(1, 3)), int(rng.choice(targets)), _kill_delay(rng)
    points: list[str] = []
    for launch in range(1, 5):
        where, returncode = _launch(lab, cmd, run, launch, target, delay)
        if where is None:
            check(returncode == 0, f"launch {launch} exited with {returncode}")
            if points:
                points.append(f"launch {launch} finished before its kill")
                break
            shutil.rmtree(run)  # finished before the first kill: start over, killing sooner
            target, delay = min(targets), 0.0
            continue
        points.append(f"kill {len(points) + 1} at {where}")
        later = [t for t in targets if t > max(csv_steps(run), default=0)]
        if len(points) == kills or not later:
            break
        target, delay = int(rng.choice(later)), _kill_delay(rng)
    return points


def _kill_trial(lab: Lab, rng: np.random.Generator, ref: Path, targets: list[int], notes: list[str]) -> str:
    """One trial: a run killed once or twice, rerun, and compared with the uninterrupted reference ref."""
    run = lab.fresh("kill")
    cmd = lab.kill_command(run)
    points = _kill_launches(lab, rng, run, cmd, targets)
    check(bool(points), "no launch could be killed before it finished")
    newest = max(ckpt_steps(run), default=None)
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=lab.env)
    notes.append("; ".join(points))
    check(final.returncode == 0, f"the rerun failed: {describe_stderr(final.stderr)}")
    if newest is not None:
        check(f"resuming {run} from step {newest}\n" in final.stdout, f"the rerun did not resume from {newest}")
    problems = compare_runs(run, ref, KILL_STEPS, LOG_EVERY)
    check(not problems, "; ".join(problems))
    if stray_files(run):
        notes.append(f"temporary files left in checkpoints/: {stray_files(run)}")
    return "resumed exactly"


def fault_kill(lab: Lab, trials: int, rng: np.random.Generator) -> list[Row]:
    """SIGKILL a training subprocess once or twice at random points, rerun it, compare with an uninterrupted run."""
    row = Row(
        "SIGKILL at a random point (once or twice), then rerun",
        "the rerun resumes from the newest checkpoint; checkpoints bit-identical to an uninterrupted run; CSV rows "
        "equal ignoring time/*, each step once per run",
    )
    ref = lab.fresh("kill-reference")
    start = time.perf_counter()
    reference = subprocess.run(lab.kill_command(ref), capture_output=True, text=True, timeout=600, env=lab.env)
    lab.log(f"  [kill] reference run: {time.perf_counter() - start:.1f} s")
    if reference.returncode != 0:
        row.outcomes = ["FAILED"] * trials
        row.notes.append(f"the reference run failed: {describe_stderr(reference.stderr)}")
        return [row]
    targets = list(range(SAVE_EVERY, KILL_STEPS, LOG_EVERY))  # kill after the row of one of these steps (+ a delay)
    for _ in range(trials):
        row.trial(functools.partial(_kill_trial, lab, rng, ref, targets), lab.log)
    return [row]
