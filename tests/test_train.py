"""The training loop: run folder contents, vmapped-run independence, exact resume after SIGKILL, divergence handling,
config validation, checkpoints and CSV logs."""

import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import EVAL_MAX_STEPS, TASKS, TINY_AGENT, checkpoint_steps, killable, tiny_agent_args

from sscp import checkpoint
from sscp.agents.base import domain_key
from sscp.agents.sscp import SSCPConfig
from sscp.errors import CheckpointError, ConfigError, DivergenceError
from sscp.runlog import CSVLogger, read_csv
from sscp.train import Trainer
from tests.faults.nan import poisoned_update


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


# ---- end to end -----------------------------------------------------------------------------------------------------


def test_end_to_end_writes_the_run_folder(trained_run):
    trainer, results = trained_run
    run_dir = trainer.run_dir
    runs = [(t, s) for t in TASKS for s in (0, 1)]

    record = json.loads((run_dir / "config.json").read_text())
    assert record["train"]["steps"] == 300 and record["train"]["dataset"] == list(TASKS)
    assert record["agent"]["actor_hidden_dims"] == [16, 16] and record["agent"]["batch_size"] == 32
    assert [(r["dataset"], r["seed"]) for r in record["runs"]] == runs
    assert [r["env_name"] for r in record["runs"]] == ["pointmaze-medium-singletask-task1-v0"] * 2 + [
        "pointmaze-medium-singletask-task2-v0"
    ] * 2
    # where the run came from: this checkout's commit (a 40-hex hash, "-dirty" with uncommitted changes) and argv
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", record["provenance"]["commit"])
    assert record["provenance"]["command"] == shlex.join(sys.argv)

    rows = read_csv(run_dir / "train.csv")
    assert len(rows) == 4 * (300 // 50)  # one row per run per log_every chunk
    assert [int(r["step"]) for r in rows] == [s for s in range(50, 301, 50) for _ in range(4)]
    for index, (task, seed) in enumerate(runs):
        mine = [r for r in rows if int(r["run"]) == index]
        assert {(r["task"], int(r["seed"])) for r in mine} == {(task, seed)}
        assert [int(r["step"]) for r in mine] == list(range(50, 301, 50))  # monotone, no gaps
    losses = [k for k in rows[0] if k.startswith("train/")]
    assert {"train/critic_loss", "train/actor_loss", "train/flow_loss", "train/grad_norm"} <= set(losses)
    assert all(math.isfinite(float(r[k])) for r in rows for k in losses)
    assert all(float(r["time/updates_per_sec"]) > 0 for r in rows)

    evals = read_csv(run_dir / "eval.csv")
    assert [(int(r["step"]), int(r["run"])) for r in evals] == [(s, i) for s in (150, 300) for i in range(4)]
    assert all(0.0 <= float(r["eval/success"]) <= 1.0 for r in evals)
    assert all(1 <= float(r["eval/length"]) <= EVAL_MAX_STEPS for r in evals)
    assert len(results) == 4
    for res, row in zip(results, evals[-4:], strict=True):
        assert 0.0 <= res["success"] <= 1.0
        assert float(row["eval/success"]) == res["success"] and float(row["eval/return"]) == res["return"]

    png = (run_dir / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000

    ckpts = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert [p.name for p in ckpts] == ["step_0000000200.ckpt", "step_0000000300.ckpt"]
    assert len(list((run_dir / "checkpoints").iterdir())) <= trainer.cfg.keep_checkpoints  # no stray temp files
    step, state, meta = checkpoint.load(ckpts[-1], trainer.agents)
    assert step == 300 and meta["train_csv"] == (run_dir / "train.csv").stat().st_size
    for saved, live in zip(_leaves(state), _leaves(trainer.agents), strict=True):
        np.testing.assert_array_equal(saved, live)


def test_vmapped_runs_are_independent(trained_run, tiny_config, tmp_path):
    """Run (task2, seed 1) of the 4 vmapped runs ends with the same state as the same run trained on its own.

    Not bit for bit: the initial states are identical, but XLA on CPU sums the batch gradients of the biases in another
    order for a vmapped batch of 4 runs than of 1, so the two drift apart at float32 rounding level (after 300 updates
    about 1e-6 on parameters of size ~0.5). Anything shared between runs (keys, batches, tasks) would show at the level
    that separates two seeds (~1e-2), so the tolerance below is tight enough to catch it.
    """
    trainer, _ = trained_run
    alone = Trainer(tiny_config(tmp_path / "alone", dataset=TASKS[1:], seeds=(1,)), TINY_AGENT)
    alone.train()
    (index,) = [r.index for r in trainer.runs if (r.dataset, r.seed) == (TASKS[1], 1)]
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(alone.agents)]
    together, single = _leaves(trainer.agents), _leaves(alone.agents)
    assert len(together) == len(single) == len(paths)
    for path, a, b in zip(paths, together, single, strict=True):
        assert a.shape[1:] == b.shape[1:] and b.shape[0] == 1, path
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a[index], b[0], rtol=1e-4, atol=1e-5, err_msg=path)
        else:  # RNG keys and Adam's step count
            np.testing.assert_array_equal(a[index], b[0], err_msg=path)
    # The same comparison with the run next to it (task2, seed 0) fails by far.
    kernels = [(a, b) for path, a, b in zip(paths, together, single, strict=True) if path.startswith(".params")]
    assert max(np.abs(a[index - 1] - b[0]).max() for a, b in kernels) > 1e-2


# ---- exact resume after a real kill ---------------------------------------------------------------------------------

RESUME_STEPS = 600


def _train_command(run_dir: Path, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sscp.cli",
        "train",
        "--dataset",
        TASKS[0],
        "--seeds",
        "0",
        "1",
        "--steps",
        str(RESUME_STEPS),
        "--log-every",
        "50",
        "--save-every",
        "100",
        "--eval-every",
        "200",  # evaluation (and plotting) keeps the process busy long enough after a checkpoint to kill it mid-run
        "--eval-episodes",
        "1",
        "--eval-workers",
        "0",
        "--eval-max-steps",
        "100",
        "--keep-checkpoints",
        "2",
        "--no-progress",
        "--run-dir",
        str(run_dir),
        "--data-dir",
        str(data_dir),
        *tiny_agent_args(),
    ]


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(tiny_data_dir, tmp_path):
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"
    # A compilation cache shared by the three processes only saves time: a cached executable is the same machine code.
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    }
    # The reference run and the run to be killed start together (2 cores run them in about the time of one); the
    # kill waits for files, not for a time, so the other process slowing it down only makes the wait longer.
    with open(tmp_path / "reference.log", "w") as ref_log:
        reference = subprocess.Popen(
            _train_command(reference_dir, tiny_data_dir), stdout=ref_log, stderr=subprocess.STDOUT, env=env
        )
    with open(tmp_path / "killed.log", "w") as log:
        victim = subprocess.Popen(
            _train_command(killed_dir, tiny_data_dir), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + 240
            # Kill once there is a checkpoint beyond the first AND train.csv has rows past it, which resume must drop.
            while not killable(killed_dir, "train.csv"):
                assert victim.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "no second checkpoint in time"
                time.sleep(0.005)
            assert victim.poll() is None, "the run finished before it could be killed"
            victim.kill()  # SIGKILL: no cleanup runs; rows logged after the checkpoint stay in train.csv
            assert victim.wait() == -9
        except BaseException:
            reference.kill()
            reference.wait()
            raise
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
    assert reference.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()
    killed_at = max(checkpoint_steps(killed_dir))
    assert killed_at < RESUME_STEPS
    logged = [int(r["step"]) for r in read_csv(killed_dir / "train.csv")]
    print(f"killed with checkpoint {killed_at} and train.csv rows up to step {max(logged)}")
    assert max(logged) > killed_at

    resumed = subprocess.run(
        _train_command(killed_dir, tiny_data_dir), capture_output=True, text=True, timeout=300, env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {killed_dir} from step {killed_at}" in resumed.stdout

    for name in ("train.csv", "eval.csv"):
        got, want = read_csv(killed_dir / name), read_csv(reference_dir / name)
        assert _without_time(got) == _without_time(want), name
    rows = read_csv(killed_dir / "train.csv")
    for run in (0, 1):
        assert [int(r["step"]) for r in rows if r["run"] == str(run)] == list(range(50, RESUME_STEPS + 1, 50))

    assert checkpoint_steps(killed_dir) == checkpoint_steps(reference_dir) == [RESUME_STEPS - 100, RESUME_STEPS]
    name = f"step_{RESUME_STEPS:010d}.ckpt"
    got, want = (checkpoint.read_payload(d / "checkpoints" / name) for d in (killed_dir, reference_dir))
    assert got["step"] == want["step"] == RESUME_STEPS
    assert got["meta"]["train_csv"] == (killed_dir / "train.csv").stat().st_size  # byte offsets differ: time/*
    got_leaves, want_leaves = jax.tree.leaves(got["state"]), jax.tree.leaves(want["state"])
    assert len(got_leaves) == len(want_leaves) > 0
    for a, b in zip(got_leaves, want_leaves, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()  # bit-identical


# ---- non-finite values ----------------------------------------------------------------------------------------------


def _adam_count(opt_state) -> jax.Array:
    paths = jax.tree_util.tree_leaves_with_path(opt_state)
    return next(leaf for path, leaf in paths if "count" in jax.tree_util.keystr(path))


@pytest.mark.slow
def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
    trainer = Trainer(tiny_config(tmp_path / "run", steps=200), TINY_AGENT)
    # The losses turn NaN one step later (step 138); the error must name the first bad quantity and step.
    with poisoned_update(lambda before, after: _adam_count(after.opt_state) == 137):
        with pytest.raises(DivergenceError, match=r"^grad_norm became nan at step 137 \(run 0: ") as error:
            trainer.train()
    assert str(tmp_path / "run" / "checkpoints") in str(error.value)
    assert checkpoint_steps(tmp_path / "run") == [100]
    assert [int(r["step"]) for r in read_csv(tmp_path / "run" / "train.csv")] == [50, 100]  # bad chunk not logged
    restored = checkpoint.load_latest(tmp_path / "run" / "checkpoints", trainer.agents)
    assert restored is not None and restored[0] == 100
    assert all(np.isfinite(leaf).all() for leaf in _leaves(restored[1]) if leaf.dtype.kind == "f")


@pytest.mark.slow
def test_skip_nonfinite_finishes_with_finite_params(tiny_config, tmp_path):
    trainer = Trainer(tiny_config(tmp_path / "run", steps=150, on_nonfinite="skip"), TINY_AGENT)
    with poisoned_update(lambda before, after: jax.random.bernoulli(jax.random.fold_in(before.rng, 7), 0.3)):
        results = trainer.train()
    assert trainer.step == 150 and len(results) == 1
    assert all(np.isfinite(leaf).all() for leaf in _leaves(trainer.agents) if leaf.dtype.kind == "f")
    rows = read_csv(tmp_path / "run" / "train.csv")
    skipped = [float(r["train/skipped"]) for r in rows]
    assert len(rows) == 3 and all(0.0 < s < 1.0 for s in skipped), skipped  # some updates skipped, most applied
    # Logged losses average the applied updates only, so they stay finite.
    assert all(math.isfinite(float(r[k])) for r in rows for k in r if k.startswith("train/"))


# ---- config validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "agent", "message"),
    [
        ({"steps": 0}, {}, r"--steps must be positive, got 0"),
        ({"steps": -5}, {}, r"--steps must be positive, got -5"),
        ({"seeds": (0, 1, 0)}, {}, r"--seeds has duplicates: \(0, 1, 0\)"),
        (
            {"agent": "nope"},
            {},
            r"unknown agent 'nope'; valid agents: bc, diffusion_bc, dql, flow_bc, fql, gc_sscp, gcbc, gcivl, hiql, "
            r"iql, rebrac, sac, sscp, sscp_bc",
        ),
        ({}, {"batch_size": 1000}, r"--agent.batch-size 1000 is larger than the dataset \(297 transitions\)"),
        ({}, {"not_a_field": 3}, r"bad agent option for sscp: .*not_a_field"),
        ({"eval_max_steps": 0}, {}, r"--eval-max-steps must be positive"),
    ],
)
def test_bad_config_fails_before_training(tiny_config, tmp_path, changes, agent, message):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        Trainer(tiny_config(run_dir, **changes), {**TINY_AGENT, **agent}).train()
    assert not run_dir.exists()


# ---- checkpoints ----------------------------------------------------------------------------------------------------


def _state(value: float) -> dict:
    return {"w": np.full((3, 2), value, np.float32), "rng": np.arange(2, dtype=np.uint32) + int(value)}


def test_corrupt_newest_checkpoint_is_skipped_with_a_warning(tmp_path, capsys):
    for step in (10, 20, 30):
        checkpoint.save(tmp_path, step, _state(step), {"elapsed": float(step)}, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_0000000020.ckpt", "step_0000000030.ckpt"]
    newest = tmp_path / "step_0000000030.ckpt"
    newest.write_bytes(newest.read_bytes()[:20])  # torn file
    step, state, meta = checkpoint.load_latest(tmp_path, _state(0))
    assert step == 20 and meta == {"elapsed": 20.0}
    np.testing.assert_array_equal(state["w"], _state(20)["w"])
    err = capsys.readouterr().err
    assert "warning: skipping" in err and str(newest) in err

    newest.write_bytes(b"not a checkpoint at all")
    (tmp_path / "step_0000000020.ckpt").write_bytes(b"")
    assert checkpoint.load_latest(tmp_path, _state(0)) is None


def test_one_flipped_bit_in_a_checkpoint_is_detected(tmp_path, capsys):
    """A SHA-256 over the body catches damage that still parses (a flipped low bit of a parameter)."""
    for step in (10, 20):
        checkpoint.save(tmp_path, step, _state(step), {"elapsed": float(step)}, keep=2)
    newest = tmp_path / "step_0000000020.ckpt"
    data = bytearray(newest.read_bytes())
    data[-3] ^= 1  # inside the last array's bytes
    newest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        checkpoint.read_payload(newest)
    step, _, _ = checkpoint.load_latest(tmp_path, _state(0))
    assert step == 10 and "checksum mismatch" in capsys.readouterr().err


def test_saving_after_skipping_a_corrupt_checkpoint_keeps_the_new_one(tmp_path):
    for step in (100, 200):
        checkpoint.save(tmp_path, step, _state(step), {}, keep=1)
    checkpoint.save(tmp_path, 100, _state(100), {}, keep=0)  # keep=0 keeps everything
    (tmp_path / "step_0000000200.ckpt").write_bytes(b"\x00" * 10)  # e.g. a damaged disk or a partial copy
    assert checkpoint.load_latest(tmp_path, _state(0))[0] == 100
    # The resumed run saves step 150: the unreadable step-200 file must not count as newer and prune it.
    checkpoint.save(tmp_path, 150, _state(150), {}, keep=1)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_0000000150.ckpt"]
    assert checkpoint.load_latest(tmp_path, _state(0))[0] == 150


def test_a_temporary_file_left_by_a_kill_mid_save_is_removed_by_the_next_save(tmp_path):
    checkpoint.save(tmp_path, 100, _state(100), {}, keep=2)
    stray = tmp_path / ".step_0000000200.ckpt.tmp-4242"  # what write_atomic leaves when killed before its rename
    stray.write_bytes(b"partial")
    assert checkpoint.load_latest(tmp_path, _state(0))[0] == 100  # never read as a checkpoint
    checkpoint.save(tmp_path, 200, _state(200), {}, keep=2)
    assert not stray.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000000100.ckpt", "step_0000000200.ckpt"]


def test_checkpoint_with_other_shapes_is_rejected(tmp_path):
    path = checkpoint.save(tmp_path, 5, _state(1), {})
    with pytest.raises(CheckpointError, match="shapes differ"):
        checkpoint.load(path, {"w": np.zeros((4, 2), np.float32), "rng": np.zeros(2, np.uint32)})


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    checkpoint.write_atomic(path, b"old")
    saved = checkpoint.save(tmp_path / "ckpt", 10, _state(1), {})

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(CheckpointError, match=r"could not write .*config.json: No space left on device"):
        checkpoint.write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    with pytest.raises(CheckpointError, match="previous file is unchanged"):
        checkpoint.save(tmp_path / "ckpt", 20, _state(2), {}, keep=1)
    assert checkpoint.list_checkpoints(tmp_path / "ckpt") == [saved]  # not pruned by the failed save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "config.json"]  # no temporary files left
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [saved.name]
    monkeypatch.undo()
    assert checkpoint.load(saved, _state(0))[0] == 10
    with pytest.raises(CheckpointError, match="could not write"):
        checkpoint.write_atomic(tmp_path / "no" / "such" / "folder", b"data")


# ---- CSV logs -------------------------------------------------------------------------------------------------------


def test_csv_truncate_drops_later_rows(tmp_path):
    path = tmp_path / "log.csv"
    log = CSVLogger(path)
    log.log({"step": 1, "loss": 0.5})
    log.log({"step": 2, "loss": 0.25})
    position = log.position()
    log.log({"step": 3, "loss": float("nan")})
    assert [r["step"] for r in read_csv(path)] == ["1", "2", "3"]

    resumed = CSVLogger(path)  # a new process reads the header back
    resumed.truncate(position)
    assert [r["step"] for r in read_csv(path)] == ["1", "2"]
    resumed.log({"step": 3, "loss": 0.125})
    assert read_csv(path) == [
        {"step": "1", "loss": "0.5"},
        {"step": "2", "loss": "0.25"},
        {"step": "3", "loss": "0.125"},
    ]
    assert path.read_text().count("step") == 1  # one header

    resumed.truncate(0)
    assert read_csv(path) == []
    resumed.log({"step": 1, "other": 1.0})  # a fresh header after truncating to the start
    assert read_csv(path) == [{"step": "1", "other": "1.0"}]
    with pytest.raises(ValueError, match="differ from header"):
        resumed.log({"step": 2})


def test_read_csv_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss\n1,0.5\n2,0.25\n3,0.1")  # killed while writing row 3
    assert read_csv(path) == [{"step": "1", "loss": "0.5"}, {"step": "2", "loss": "0.25"}]
    path.write_text("step,loss\n1,0.5\n2")
    assert read_csv(path) == [{"step": "1", "loss": "0.5"}]
    path.write_text("step,lo")
    assert read_csv(path) == []
    assert read_csv(tmp_path / "missing.csv") == []


def test_default_run_dirs_never_collide(tmp_path, monkeypatch):
    """Two runs started in the same second get different folders instead of one resuming the other."""
    from sscp.train_config import TrainConfig, default_run_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt: "20260101-000000")
    cfg = TrainConfig(dataset=("cube-single-play-singletask-task1-v0",))
    first = default_run_dir(cfg)
    first.mkdir(parents=True)
    second = default_run_dir(cfg)
    assert second != first and second.name == "20260101-000000-2"


def test_disk_full_while_logging_is_a_clear_error(tmp_path, monkeypatch):
    """ENOSPC while appending a CSV row becomes an OutputError naming the file; earlier rows stay intact."""
    import builtins
    import errno

    from sscp.errors import OutputError

    log = CSVLogger(tmp_path / "train.csv")
    log.log({"step": 1, "loss": 0.5})
    before = (tmp_path / "train.csv").read_bytes()
    real_open = builtins.open

    def full_disk_open(path, mode="r", *args, **kwargs):
        if "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_disk_open)
    with pytest.raises(OutputError, match=r"train\.csv: No space left on device"):
        log.log({"step": 2, "loss": 0.4})
    monkeypatch.undo()
    assert (tmp_path / "train.csv").read_bytes() == before
    assert [r["step"] for r in read_csv(tmp_path / "train.csv")] == ["1"]


def test_evaluation_reuses_envs_and_its_results_do_not_depend_on_slots(monkeypatch):
    """Episodes of one env id go to slots that already hold it (an OGBench env takes ~1 s to build), and the
    per-run results are the same for 1 or 3 slots (episode seeds depend only on run and episode)."""
    import sscp.envs
    from sscp.envs import EnvPool
    from sscp.evaluate import evaluate

    builds = []
    real_make = sscp.envs.make_env
    monkeypatch.setattr(sscp.envs, "make_env", lambda name: builds.append(name) or real_make(name))

    def act(runs, obs, step):  # a fixed policy that depends on the run and the observation
        return np.tanh(obs[:, :2] * 0.1 + runs[:, None] * 0.5).astype(np.float32)

    names = ["pointmaze-medium-singletask-task1-v0", "pointmaze-medium-singletask-task2-v0"]
    per_slots = {}
    for slots in (1, 3):
        builds.clear()
        pool = EnvPool(slots, 0)
        try:
            per_slots[slots] = evaluate(act, names, 4, pool, seed=3, max_steps=5)
        finally:
            pool.close()
        # 8 episodes of two env ids: one build per env id and slot at most, not one per episode
        assert len(builds) <= 2 * slots, builds
    assert per_slots[1] == per_slots[3]


def test_default_eval_slots_follow_the_device(monkeypatch):
    """--eval-slots 0: twice the workers (at least 4) on a CPU; eight per worker (at least 16) on an accelerator,
    where a policy call waits for a device shared with other training processes."""
    from sscp.train import default_eval_slots

    assert (default_eval_slots(0), default_eval_slots(3), default_eval_slots(16)) == (4, 6, 32)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert (default_eval_slots(0), default_eval_slots(3), default_eval_slots(16)) == (16, 24, 128)


def test_stochastic_evaluation_does_not_depend_on_slots(trained_run, monkeypatch):
    """SSCP acts with fresh noise; each slot's noise key comes from (run, episode, step in episode), so a trained
    run's evaluation takes the same actions with 1 env slot (--eval-slots 1) as with 4 (the default follows the CPU
    count)."""
    import sscp.train

    trainer, _ = trained_run
    real_evaluate = sscp.train.evaluate

    def actions_taken(slots: int) -> dict:
        taken = {}

        def recording(act, *args, **kwargs):
            def act_and_record(runs, obs, episode_steps, *goals):
                actions = act(runs, obs, episode_steps, *goals)
                for run, (episode, t), o, a in zip(runs, episode_steps, obs, actions, strict=True):
                    if np.any(o != 0):  # a slot with an episode (idle slots get zero observations)
                        taken[(int(run), int(episode), int(t))] = a.tolist()
                return actions

            return real_evaluate(act_and_record, *args, **kwargs)

        monkeypatch.setattr(sscp.train, "evaluate", recording)
        trainer.evaluate(episodes=3, workers=0, slots=slots)
        return taken

    one, four = actions_taken(1), actions_taken(4)
    assert len(one) == 4 * 3 * EVAL_MAX_STEPS  # 4 runs x 3 episodes x every step
    assert one == four


def test_resuming_with_more_steps_records_the_new_options(trained_run, tmp_path):
    """A run resumed with other train options (here more --steps) trains to the new end, and config.json then says
    so: its train section holds the new values, and resumed_with the step and each old -> new value."""
    from sscp.train import Trainer

    finished, _ = trained_run
    run_dir = tmp_path / "run"
    shutil.copytree(finished.run_dir, run_dir)
    resumed = Trainer(dataclasses.replace(finished.cfg, run_dir=str(run_dir), steps=350), TINY_AGENT)
    resumed.train()
    assert resumed.step == 350
    record = json.loads((run_dir / "config.json").read_text())
    assert record["train"]["steps"] == 350
    assert record["resumed_with"] == [
        {"step": 300, "changed": {"steps": [300, 350], "run_dir": [str(finished.run_dir), str(run_dir)]}}
    ]


def test_sscp_presets_resolve_by_dataset_name_and_yield_to_explicit_options(capsys, tiny_config, tmp_path):
    """--agent.preset auto: the paper's α₂ per D4RL locomotion dataset, found from D4RL's and sscp's spellings, and the
    values swept here per OGBench domain (any task or file of it); options given explicitly win; datasets with
    different presets cannot share a process; an unknown dataset keeps the paper's defaults and the run says so."""
    auto = SSCPConfig(preset="auto")
    for name in ("hopper-medium-v2", "/data/hopper_medium-v2.hdf5", "hopper-medium-v5", "hopper-medium-v5.npz"):
        assert auto.with_preset([name]).alpha_completion == 0.05, name
    resolved = auto.with_preset(["walker2d-medium-expert-v5"])
    assert (resolved.preset, resolved.alpha_completion) == ("walker2d-medium-expert", 0.10)
    assert resolved.with_preset(["walker2d-medium-expert-v5"]) == resolved
    assert resolved.preset_note() == "preset walker2d-medium-expert: alpha_completion 0.1 (the paper's α₂ for D4RL)"
    for name in ("cube-single-play-singletask-task4-v0", "/data/scene-play-v0.npz", "puzzle-3x3-play-singletask-v0"):
        swept = SSCPConfig(preset="auto", actor_ema=0.005).with_preset([name])  # swept here: the paper's won or tied
        assert (swept.preset, swept.alpha_completion, swept.actor_ema) == (domain_key(name), 1.0, 0.0005), name
        assert "tuned here, not the paper's" in swept.preset_note()
    unsettled = auto.with_preset(["cube-double-play-singletask-task2-v0"])  # swept, no setting succeeded
    assert (unsettled.preset, unsettled.alpha_completion, unsettled.actor_ema) == ("none", 1.0, 0.0005)
    note = unsettled.no_preset_note(["cube-double-play-singletask-task2-v0"])
    assert note.startswith("--agent.preset auto: no preset for cube-double-play-singletask-task2-v0; the defaults; ")
    assert "cube-double: swept on task 2" in note
    assert (
        auto.no_preset_note(["puzzle-4x4-play-v0"])
        == "--agent.preset auto: no preset for puzzle-4x4-play-v0; the defaults"
    )
    kept = SSCPConfig(preset="auto", alpha_completion=0.3).with_preset(["hopper-medium-v2"], {"alpha_completion"})
    assert kept.alpha_completion == 0.3
    assert SSCPConfig().with_preset(["hopper-medium-v2"]).alpha_completion == 1.0  # "none", the default
    with pytest.raises(ConfigError, match="different presets"):
        auto.with_preset(["hopper-medium-v2", "walker2d-medium-v2"])
    with pytest.raises(ConfigError, match="unknown --agent.preset 'cube'"):
        SSCPConfig(preset="cube")

    trainer = Trainer(
        tiny_config(tmp_path / "run2", steps=2, log_every=2, eval_episodes=0), {**TINY_AGENT, "preset": "auto"}
    )
    assert trainer.agent_cfg.preset == "none" and trainer.agent_cfg.alpha_completion == 1.0
    trainer.train()
    assert f"--agent.preset auto: no preset for {TASKS[0]}; the defaults" in capsys.readouterr().out
    assert not (tmp_path / "run2" / "curves.png").exists()  # plot=False (tiny_config's): no drawing


def test_fql_presets_are_its_published_alpha_per_ogbench_domain():
    """FQL's `--agent.preset auto` finds the dataset's OGBench domain (any task, file or version of it) and applies the
    α of FQL's published commands; a domain without one keeps the default α; an explicit α wins."""
    from sscp.agents.fql import FQLConfig

    assert domain_key("cube-single-play-singletask-task2-v0") == "cube-single"
    assert domain_key("/data/puzzle-4x4-play-v0.npz") == "puzzle-4x4"
    assert domain_key("antmaze-large-navigate-singletask-v0") == "antmaze-large"
    auto = FQLConfig(preset="auto")
    for name, alpha in [
        ("cube-single-play-singletask-task2-v0", 300.0),
        ("cube-double-play-singletask-task5-v0", 300.0),
        ("scene-play-v0", 300.0),
        ("/data/puzzle-3x3-play-singletask-task4-v0.npz", 1000.0),
        ("puzzle-4x4-play-singletask-v0", 1000.0),
        ("pointmaze-medium-navigate-v0", 10.0),
    ]:
        assert auto.with_preset([name]).alpha == alpha, name
    resolved = auto.with_preset(["cube-single-play-singletask-task1-v0"])
    assert resolved.preset_note() == "preset cube-single: alpha 300.0"
    assert FQLConfig(preset="auto", alpha=30.0).with_preset(["scene-play-v0"], {"alpha"}).alpha == 30.0
    assert FQLConfig().with_preset(["scene-play-v0"]).alpha == 10.0  # "none", the default
    with pytest.raises(ConfigError, match="unknown --agent.preset 'cube'; valid: none, auto, cube-double"):
        FQLConfig(preset="cube")


def test_provenance_names_the_commit_given_in_the_environment(monkeypatch):
    """A copy of the code without its git folder passes its commit in $SSCP_COMMIT; config.json records that."""
    from sscp.run_folder import provenance

    monkeypatch.setenv("SSCP_COMMIT", "0123abc")
    assert provenance() == {"commit": "0123abc", "command": shlex.join(sys.argv)}


def test_run_folders_written_by_older_versions_still_resume(tmp_path, tiny_config):
    """config.json files name options sscp no longer has (flat_optimizer, fuse_network_calls: the same numbers at any
    value; matmul_precision "default"): they are dropped on reading, so such a run resumes; options added since
    take their defaults; a matmul precision that computed other numbers is refused with one line naming the file
    and the option."""
    from sscp.run_folder import RunFolder

    run_dir = tmp_path / "old"
    Trainer(tiny_config(run_dir, steps=100), TINY_AGENT).train()
    path = run_dir / "config.json"
    record = json.loads(path.read_text())
    record["agent"].update(flat_optimizer=False, fuse_network_calls=True)
    record["train"]["matmul_precision"] = "default"
    path.write_text(json.dumps(record))
    resumed = Trainer(tiny_config(run_dir, steps=150), TINY_AGENT)
    resumed.train()
    assert resumed.step == 150
    assert "flat_optimizer" not in json.loads(path.read_text())["agent"]
    del record["agent"]["exploration_noise_decay"]  # an option added later: the run resumes with its default
    path.write_text(json.dumps(record))
    again = Trainer(tiny_config(run_dir, steps=200), TINY_AGENT)
    again.train()
    assert again.step == 200
    record["agent"]["actor_ema"] = 0.5  # a different setting is still refused
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="different agent config"):
        Trainer(tiny_config(run_dir, steps=250), TINY_AGENT).train()
    record["train"]["matmul_precision"] = "bfloat16"
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="matmul_precision = 'bfloat16', an option sscp no longer has"):
        RunFolder(run_dir).read_config()
