"""benchmarks/sweep_steps.py and sweep.sh's PHASE=finish: the step at which a sweep's groups are compared."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import sweep_steps


def _group(sweep: Path, agent: str, dataset: str, steps: list[int], variant: str = "default") -> Path:
    folder = sweep / "runs" / agent / dataset / variant
    (folder / "checkpoints").mkdir(parents=True)
    for step in steps:
        (folder / "checkpoints" / f"step_{step:010d}.ckpt").write_bytes(b"")
    return folder


def test_each_dataset_gets_the_largest_step_all_its_groups_kept(tmp_path, capsys):
    a = _group(tmp_path, "sac", "Walker2d-v5", [240000, 260000, 280000])
    b = _group(tmp_path, "sscp", "Walker2d-v5", [240000, 260000])
    c = _group(tmp_path, "sac", "Hopper-v5", [260000, 280000, 300000])
    d = _group(tmp_path, "sscp", "Hopper-v5", [260000, 280000], variant="preset=none")
    e = _group(tmp_path, "sscp", "Ant-v5", [20000])
    f = _group(tmp_path, "sac", "Ant-v5", [40000])
    (tmp_path / "runs" / "sscp" / "Ant-v5" / "no-checkpoints").mkdir()  # a group that saved none is not listed
    steps = sweep_steps.common_steps(tmp_path)
    assert steps == {a: 260000, b: 260000, c: 280000, d: 280000, e: None, f: None}
    sweep_steps.main([str(tmp_path)])
    lines = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert lines[str(b)] == "260000" and lines[str(d)] == "280000" and lines[str(e)] == ""


def _finish(sweep: Path, tmp_path: Path, eval_step: str) -> str:
    """Runs sweep.sh's PHASE=finish on a sweep folder and returns its lines on the groups it evaluates."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(SPEC="tiny.yaml", SWEEP=str(sweep), PHASE="finish", WAIT_S="0", EVAL_S="1", OUT=str(tmp_path / "out"))
    env.pop("EVAL_STEP", None)
    if eval_step:
        env["EVAL_STEP"] = eval_step
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "sweep.sh"
    done = subprocess.run(["bash", str(script)], env=env, cwd=script.parents[2], capture_output=True, text=True)
    return "\n".join(line for line in done.stdout.splitlines() if "EVAL_S" in line or "evaluating" in line)


@pytest.mark.slow
def test_sweep_sh_finish_evaluates_at_the_common_step_by_default(tmp_path):
    sweep = tmp_path / "sweep"
    _group(sweep, "sac", "Walker2d-v5", [240000, 260000, 280000])
    done = _group(sweep, "sscp", "Walker2d-v5", [240000, 260000])
    (done / "eval.csv").write_text("step,eval/return\n260000,1.0\n")  # evaluated there in training: not again
    _group(sweep, "sscp", "Ant-v5", [20000])
    ant = _group(sweep, "sac", "Ant-v5", [40000])
    (ant / "result.json").write_text("{}")  # finished: without a common step, only unfinished groups are evaluated
    shown = _finish(sweep, tmp_path, "")
    assert "evaluating 2 group(s) from their checkpoints: sac/Walker2d-v5/default@260000 sscp/Ant-v5/default\n" in (
        shown + "\n"
    )
    assert shown.count("no step has a checkpoint in every group of Ant-v5") == 1  # once per dataset, not per group
    # EVAL_S=1 ends each evaluation before it loads, and the output says so rather than showing no score silently
    assert "the evaluation of sscp/Ant-v5/default was stopped after EVAL_S=1 s: no score" in shown
    assert "evaluating 1 group(s) from their checkpoints: sac/Walker2d-v5/default@260000" in _finish(
        sweep, tmp_path, "common"
    )
    assert "newest checkpoints of 3 unfinished group(s)" in _finish(sweep, tmp_path, "newest")
