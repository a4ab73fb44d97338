"""Push-T (sscp/PushT-v0) and its planned demonstrations: seeded resets, the action mapping onto pixel bounds,
success, the planner's model against the simulator, and the zarr store. All but the first test need the `pusht`
extra; the first needs it absent."""

import numpy as np
import pytest

from sscp import sims
from sscp.errors import ConfigError, DataError


@pytest.fixture
def pusht():
    """Returns sscp.sims.pusht_env, skipping the test without gym-pusht."""
    pytest.importorskip("gym_pusht", reason="gym-pusht is not installed (pip install 'sscp[pusht]')")
    from sscp.sims import pusht_env

    return pusht_env


def _reset_state(agent: tuple[float, float], pose: np.ndarray) -> list[float]:
    """Returns gym-pusht's reset_to_state that puts the T at pose: it sets the position before the angle, which
    turns the T about its centre of gravity (0, 45 in its frame), so the position is given where that turn starts."""
    centre = np.array([0.0, 45.0])
    c, s = np.cos(pose[2]), np.sin(pose[2])
    position = pose[:2] - centre + np.array([[c, -s], [s, c]]) @ centre
    return [*agent, *position, pose[2]]


@pytest.mark.skipif(sims.available("gym_pusht"), reason="gym-pusht is installed; this checks the error without it")
def test_make_env_without_gym_pusht_names_the_extra():
    from sscp.envs import make_env

    with pytest.raises(ConfigError, match=r"sscp\[pusht\]"):
        make_env("sscp/PushT-v0")


def test_reset_is_deterministic_by_seed(pusht):
    env = pusht.PushTEnv()
    first, info = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    other, _ = env.reset(seed=6)
    assert first.shape == (5,) and first.dtype == np.float32 and env.observation_space.contains(first)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert set(info) == {"success", "coverage"}


def test_actions_map_linearly_onto_custom_pixel_bounds(pusht):
    np.testing.assert_allclose(pusht.pixels(np.array([-1.0, 3.0]), np.array([10.0, 20.0]), np.array([30.0, 60.0])),
                               [10.0, 60.0])  # fmt: skip
    env = pusht.PushTEnv(action_low=(100.0, 200.0), action_high=(300.0, 400.0))
    env.reset(seed=0, options={"reset_to_state": _reset_state((250.0, 250.0), np.array([420.0, 100.0, 0.0]))})
    for action, expected in (([-1.0, 1.0], [100.0, 400.0]), ([0.0, 0.0], [200.0, 300.0])):
        for _ in range(15):  # the PD controller settles on its target within a second and a half
            obs, *_ = env.step(np.array(action))
        np.testing.assert_allclose(obs[:2], expected, atol=0.5)
    with pytest.raises(ConfigError, match="action_high"):
        pusht.PushTEnv(action_low=(10.0, 10.0), action_high=(5.0, 20.0))


def test_the_env_observes_as_its_store_was_rescaled(pusht, tmp_path):
    from sscp.data import pusht_demos, registry
    from sscp.data.zarr_replay import load_zarr_replay
    from sscp.envs import make_env

    (path,) = pusht_demos.make("pusht-demos-v0", tmp_path, episodes=1, seed=0)
    spec = registry.resolve(str(path))
    env = make_env(spec.env_name)  # the store's action and observation bounds ride in the env name
    state = load_zarr_replay(path, rescale_observations=False)["observations"][0]
    obs, _ = env.reset(seed=0, options={"reset_to_state": _reset_state(tuple(state[:2]), state[2:])})
    np.testing.assert_allclose(obs, load_zarr_replay(path)["observations"][0], atol=1e-4)
    with pytest.raises(ConfigError, match="obs_low"):
        pusht.PushTEnv(obs_low=[0.0] * 4, obs_high=[1.0] * 5)


def test_success_once_the_goal_is_covered_and_truncation(pusht):
    from sscp.data.pusht_planner import GOAL_POSE

    env = pusht.PushTEnv(max_episode_steps=3)
    env.reset(seed=0, options={"reset_to_state": _reset_state((100.0, 100.0), GOAL_POSE)})
    _, reward, terminated, truncated, info = env.step(np.array([100.0, 100.0]) / 256.0 - 1.0)
    assert info["success"] == 1.0 and info["coverage"] >= 0.95 and terminated and not truncated and reward == 1.0
    env.reset(seed=0, options={"reset_to_state": _reset_state((100.0, 100.0), GOAL_POSE + [0.0, 80.0, 0.0])})
    for step in range(3):
        _, _, terminated, truncated, info = env.step(np.array([-0.6, -0.6]))
        assert info["success"] == 0.0 and not terminated and truncated == (step == 2)


def test_planner_predicts_the_simulator(pusht):
    from sscp.data import pusht_planner as planner

    env = pusht.PushTEnv()
    env.reset(seed=3)
    before = planner.pose_error(np.array([*env.sim.block.position, env.sim.block.angle]))
    plan = planner.plan(planner.PushSim(), planner.state_of(env.sim.agent, env.sim.block), ("left",),
                        planner.Pace(), np.random.default_rng(0))  # fmt: skip
    for target in plan.targets:
        env.step(target / 256.0 - 1.0)
    after = planner.pose_error(np.array([*env.sim.block.position, env.sim.block.angle]))
    assert plan.side == "left" and plan.error < before
    assert after == pytest.approx(plan.error, abs=1.0)


def test_demonstrations_store_loads_as_a_replay_buffer(pusht, tmp_path, capsys):
    import zarr

    from sscp.data import pusht_demos
    from sscp.data.zarr_replay import load_zarr_replay

    (path,) = pusht_demos.make("pusht-demos-v0", tmp_path, episodes=2, seed=0)
    assert path == tmp_path / "pusht-demos-v0.zarr" and "success rate" in capsys.readouterr().out
    root = zarr.open_group(str(path), mode="r")
    ends, modes = root["meta/episode_ends"][...], root["meta/episode_mode"][...]
    actions = root["data/action"][...]
    assert len(ends) == 2 and len(modes) == 2 and set(root.attrs["modes"]) == set(pusht_demos.MODES)
    assert root["data/state"].shape == (ends[-1], 5) and actions.shape == (ends[-1], 2)
    assert actions.min() >= 0.0 and actions.max() <= 512.0
    data = load_zarr_replay(path)
    assert len(data["actions"]) == ends[-1] - 2 and data["terminals"].sum() == 2
    assert np.abs(data["actions"]).max() <= 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_store_is_replaced_whole_and_failures_are_counted(pusht, tmp_path, monkeypatch):
    from sscp.data import pusht_demos

    episode = {"state": np.zeros((4, 5), np.float32), "action": np.full((4, 2), 256.0, np.float32)}
    path = pusht_demos.write_store(tmp_path / "a.zarr", [episode, episode], [0, 1])
    pusht_demos.write_store(path, [episode], [2])
    from sscp.data.zarr_replay import load_zarr_replay

    assert load_zarr_replay(path)["terminals"].sum() == 1
    monkeypatch.setattr(pusht_demos, "episode", lambda *args, **kwargs: (episode, False))
    with pytest.raises(DataError, match="only 0 of 4 episodes"):
        pusht_demos.make("pusht-demos-v0", tmp_path, episodes=2)
