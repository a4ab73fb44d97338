"""Deployment: `sscp export` round trips through `sscp.runtime` (jax + numpy only), the export-time check, and
evaluation videos (the MP4 writer on synthetic frames, and real offscreen rendering through `sscp eval --video`)."""

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import eval_with_video

from sscp import cli, export, runtime
from sscp.agents.base import Agent
from sscp.errors import ConfigError


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """Returns (trainer, path of run 1's policy with the key as an input)."""
    trainer, _ = trained_run
    path = tmp_path_factory.mktemp("export") / "policy.sscp"
    assert cli.main(["export", str(trainer.run_dir), "--run", "1", "--out", str(path)]) == 0
    return trainer, path


@pytest.mark.slow
def test_exported_policy_acts_like_the_trained_agent(exported, capsys):
    trainer, path = exported
    policy = runtime.load(path)
    assert policy.header["agent"] == "sscp" and policy.header["run"] == 1 and policy.header["noise"] == "input"
    agent = jax.tree.map(lambda x: x[1], trainer.agents)
    obs = np.asarray(trainer.data.observations[:7])
    key = jax.random.PRNGKey(5)
    expected = np.asarray(agent.sample_actions(jnp.asarray(obs), key))
    np.testing.assert_allclose(policy(obs, key=key), expected, atol=1e-5)
    single = policy(obs[0])
    assert single.shape == (trainer.data.actions.shape[1],) and np.all(np.abs(single) <= 1)
    many = np.asarray(trainer.data.observations[:64])
    assert not np.array_equal(policy(many), policy(many))  # a fresh key per call
    with pytest.raises(ValueError, match=r"expected \(2,\) or \(B, 2\)"):
        policy(np.zeros(3))
    with pytest.raises(ValueError, match="not goal-conditioned"):
        policy(obs[0], obs[0])


def test_fixed_seed_export_is_deterministic(exported, tmp_path, capsys):
    trainer, _ = exported
    path = tmp_path / "fixed.sscp"
    assert cli.main(["export", str(trainer.run_dir), "--seed", "3", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: sscp run 0 (") and "noise fixed (seed 3); max |exported - trained| = " in out
    policy = runtime.load(path)
    obs = np.asarray(trainer.data.observations[:5])
    np.testing.assert_array_equal(policy(obs), policy(obs))
    agent = jax.tree.map(lambda x: x[0], trainer.agents)
    np.testing.assert_allclose(policy(obs), agent.sample_actions(jnp.asarray(obs), jax.random.PRNGKey(3)), atol=1e-5)


def test_runtime_needs_only_jax_and_numpy(exported):
    _, path = exported
    runtime_file = Path(runtime.__file__)
    script = f"""
import sys, importlib.util
for name in ("flax", "optax", "gymnasium", "mujoco", "ogbench", "sscp", "tyro"):
    sys.modules[name] = None  # any import of these now fails
spec = importlib.util.spec_from_file_location("policy_runtime", {str(runtime_file)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
policy = module.load({str(path)!r})
print(policy([0.1, 0.2]).shape)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2,)"


def test_a_mismatching_export_fails_and_writes_nothing(trained_run, tmp_path, monkeypatch, capsys):
    trainer, _ = trained_run
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # any difference, even 0, now counts as a mismatch
    path = tmp_path / "bad.sscp"
    assert cli.main(["export", str(trainer.run_dir), "--out", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sscp: error: the exported policy differs from the trained one") and err.count("\n") == 1
    assert not path.exists()
    assert cli.main(["export", str(trainer.run_dir), "--run", "9"]) == 2


class _GoalAgent(Agent, flax.struct.PyTreeNode):
    goal_conditioned: ClassVar[bool] = True
    weight: jax.Array

    def sample_actions(self, observations, goals, key):
        noise = 0.01 * jax.random.normal(key, (*observations.shape[:-1], self.weight.shape[1]))
        return jnp.tanh((goals - observations) @ self.weight + noise)


def test_goal_conditioned_policy_takes_the_goal(tmp_path):
    agent = _GoalAgent(jnp.arange(6.0).reshape(3, 2) / 10)
    program, header = export.export_policy(agent, 3, 2, goal_dim=3, platforms=("cpu",))
    path = tmp_path / "gc.sscp"
    path.write_bytes(runtime.pack(header, program.serialize()))
    policy = runtime.load(path)
    obs, goal = np.zeros((4, 3), np.float32), np.ones(3, np.float32)
    key = jax.random.PRNGKey(0)
    np.testing.assert_allclose(policy(obs, goal, key=key), agent.sample_actions(obs, np.ones((4, 3)), key), atol=1e-6)
    with pytest.raises(ValueError, match="goal-conditioned"):
        policy(obs)
    path.write_bytes(b"not a policy")
    with pytest.raises(ValueError, match="not an sscp policy file"):
        runtime.load(path)


# --- videos ---


def test_video_writer_on_synthetic_frames(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from sscp.video import write_video

    frames = [np.full((33, 47, 3), 8 * i, np.uint8) for i in range(12)]  # odd sizes get padded to 34 x 48
    path = write_video(tmp_path / "v" / "x.mp4", frames, fps=10)
    assert path.read_bytes()[4:8] == b"ftyp"
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["size"] == (48, 34) and sum(1 for _ in reader) == 12
    with pytest.raises(ValueError, match="frame of shape"):
        write_video(tmp_path / "bad.mp4", [frames[0], np.zeros((8, 8, 3), np.uint8)])


@pytest.mark.slow
def test_eval_video_renders_offscreen(trained_run):
    trainer, _ = trained_run
    done = eval_with_video(trainer.run_dir, max_steps=6)
    videos = sorted((trainer.run_dir / "videos").glob("*.mp4"))
    assert len(videos) == 4 and "wrote " + str(videos[0]) in done.stdout
    assert "(6 steps, return" in done.stdout


def test_eval_video_names_a_rendering_failure(trained_run, monkeypatch):
    from sscp import video

    class Broken:
        unwrapped = type("U", (), {"render": lambda self: (_ for _ in ()).throw(RuntimeError("no GL"))})()

    with pytest.raises(ConfigError, match=r"cannot render x \(RuntimeError: no GL\); set MUJOCO_GL=egl"):
        video._render(Broken(), "x")
