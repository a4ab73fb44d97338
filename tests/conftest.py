"""Shared fixtures for the training and CLI tests: one tiny dataset and one tiny trained run per session.

Everything is sized for 2 CPU cores: pointmaze data (cheap to build and step), 16-wide networks, batch 32, a few
hundred updates, and evaluation episodes capped at EVAL_MAX_STEPS steps (pointmaze episodes are 1000 steps long).
"""

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# One persistent XLA compilation cache per test session, shared with the subprocesses tests start (they inherit the
# environment): most tests compile the same tiny networks' steps, and a cached executable is the one a fresh
# compilation would give. Set before JAX is imported; an outer JAX_COMPILATION_CACHE_DIR is kept.
_XLA_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _XLA_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="sscp-tests-xla-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

# Compiling takes most of the suite's time (a tiny network's programs compile in tens of ms to seconds and run in
# microseconds): at LLVM optimisation level 1 instead of XLA's default they compile in 20-45 % less time and run as
# fast on CPU. Values may differ from the default's in the last bits of rounding; tests that compare runs bit for bit
# run both under the same flags (subprocesses inherit them). An XLA_FLAGS that already sets the level is kept.
if "--xla_backend_optimization_level=" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=1".strip()

import pytest  # noqa: E402

from sscp.data.generate import generate  # noqa: E402
from tests.tiny import BASE_DATASET, EPISODE_STEPS, EPISODES, TINY_AGENT, tiny_agent_args  # noqa: E402, F401

TASKS = ("pointmaze-medium-navigate-singletask-task1-v0", "pointmaze-medium-navigate-singletask-task2-v0")
EVAL_MAX_STEPS = 50


def pytest_sessionfinish(session, exitstatus):
    """Removes this session's compilation cache."""
    if _XLA_CACHE is not None:
        import shutil

        shutil.rmtree(_XLA_CACHE, ignore_errors=True)


def eval_with_video(run_dir: Path, max_steps: int) -> subprocess.CompletedProcess:
    """Returns the finished `sscp eval RUN --episodes 1 --workers 0 --video --video-max-steps N` (offscreen EGL
    rendering unless MUJOCO_GL says otherwise); skips the test where the video extra or a renderer is missing."""
    pytest.importorskip("imageio_ffmpeg")
    args = ["eval", str(run_dir), "--episodes", "1", "--workers", "0", "--video", "--video-max-steps", str(max_steps)]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    done = subprocess.run(
        [sys.executable, "-m", "sscp.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )
    if "cannot render" in done.stderr:
        pytest.skip(f"no offscreen rendering here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Returns the steps of the checkpoints in run_dir/checkpoints, oldest first."""
    from sscp import checkpoint

    return [int(p.name[5:15]) for p in checkpoint.list_checkpoints(run_dir / "checkpoints")]


def killable(run_dir: Path, log: str) -> bool:
    """Returns True once run_dir has a checkpoint beyond step 100 and rows of `log` past it: a kill then tests a
    resume from a later checkpoint with log rows to cut back."""
    from sscp.runlog import read_csv

    steps = checkpoint_steps(run_dir)
    if not steps or max(steps) <= 100:
        return False
    return any(int(r["step"]) > max(steps) for r in read_csv(run_dir / log))


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """Returns a folder holding a tiny pointmaze-medium-navigate-v0 dataset (and its -val split)."""
    folder = tmp_path_factory.mktemp("tiny_data")
    generate(BASE_DATASET, folder, episodes=EPISODES, workers=1, progress=False, max_episode_steps=EPISODE_STEPS)
    return folder


@pytest.fixture(scope="session")
def tiny_config(tiny_data_dir):
    """Returns make(run_dir, **changes) -> TrainConfig: a tiny, quiet, in-process config on the tiny dataset."""
    from sscp.train import TrainConfig

    base = TrainConfig(
        dataset=TASKS[:1],
        steps=300,
        seeds=(0,),
        data_dir=str(tiny_data_dir),
        log_every=50,
        eval_every=0,
        eval_episodes=1,
        eval_workers=0,
        eval_max_steps=EVAL_MAX_STEPS,
        save_every=100,
        keep_checkpoints=2,
        progress=False,
        plot=False,  # curves.png: drawn where a test reads it (trained_run), about a second per evaluation otherwise
    )

    def make(run_dir: Path, **changes) -> TrainConfig:
        return dataclasses.replace(base, run_dir=str(run_dir), **changes)

    return make


@pytest.fixture(scope="session")
def trained_run(tiny_config, tmp_path_factory):
    """Returns (trainer, final results) of 2 single-task variants × 2 seeds trained for 300 steps in one process."""
    from sscp.train import Trainer

    cfg = tiny_config(
        tmp_path_factory.mktemp("trained") / "run", dataset=TASKS, seeds=(0, 1), eval_every=150, plot=True
    )
    trainer = Trainer(cfg, TINY_AGENT)
    return trainer, trainer.train()
