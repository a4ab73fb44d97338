"""robosuite's Lift, PickPlaceCan and NutAssemblySquare (sscp.sims.robosuite_env) and their scripted demonstrations
(sscp.data.robosuite_demos): seeded resets, the observation the Robomimic reader builds, truncation, and tiny
demonstration files that load, end in success and replay in the env. All but the first two tests need the
`robomimic` extra; the first needs it absent."""

import json

import h5py
import numpy as np
import pytest

from sscp import sims
from sscp.data.robomimic import DEFAULT_OBS_KEYS, load_robomimic_hdf5
from sscp.errors import ConfigError, DataError

TASKS = {"Lift": "lift-demos-v0", "PickPlaceCan": "can-demos-v0", "NutAssemblySquare": "square-demos-v0"}


@pytest.fixture
def robosuite_env():
    """Returns sscp.sims.robosuite_env, skipping the test without robosuite."""
    pytest.importorskip("robosuite", reason="robosuite is not installed (pip install 'sscp[robomimic]')")
    from sscp.sims import robosuite_env

    return robosuite_env


@pytest.mark.skipif(sims.available("robosuite"), reason="robosuite is installed; this checks the error without it")
def test_make_env_without_robosuite_names_the_extra():
    from sscp.envs import make_env

    with pytest.raises(ConfigError, match=r"sscp\[robomimic\]"):
        make_env("sscp/Lift-v0")


def test_unknown_dataset_and_episode_count_are_refused(tmp_path):
    from sscp.data import robosuite_demos

    with pytest.raises(ConfigError, match="lift-demos-v0"):
        robosuite_demos.make("lift-demos-v9", tmp_path)
    with pytest.raises(ConfigError, match="at least 1"):
        robosuite_demos.make("lift-demos-v0", tmp_path, episodes=0)


@pytest.mark.parametrize("task", TASKS)
def test_reset_is_deterministic_by_seed(robosuite_env, task):
    env = robosuite_env.RobosuiteEnv(task)
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 7))
    runs = []
    for seed in (3, 3, 4):
        obs, info = env.reset(seed=seed)
        runs.append([obs, *(env.step(a)[0] for a in actions)])
        assert obs.dtype == np.float32 and env.observation_space.contains(obs) and info == {"success": 0.0}
    np.testing.assert_array_equal(np.stack(runs[0]), np.stack(runs[1]))
    assert not np.array_equal(runs[0][0], runs[2][0])
    env.close()


def test_observation_is_the_readers_vector(robosuite_env):
    env = robosuite_env.RobosuiteEnv("PickPlaceCan")
    obs, _ = env.reset(seed=0)
    parts = env.observation_parts()
    assert robosuite_env.OBS_KEYS == DEFAULT_OBS_KEYS and list(parts) == list(DEFAULT_OBS_KEYS)
    np.testing.assert_array_equal(obs, np.concatenate(list(parts.values())).astype(np.float32))
    assert parts["object"].shape == (14,) and obs.shape == (14 + 3 + 4 + 2,)
    # Robomimic's datasets' order: the can's position and quaternion, then its pose relative to the gripper (filled
    # at reset already, not zeros as robosuite's first observation has it).
    np.testing.assert_allclose(parts["object"][:3], env.body_pose("Can_main")[0])
    distance = np.linalg.norm(env.body_pose("Can_main")[0] - parts["robot0_eef_pos"])
    np.testing.assert_allclose(np.linalg.norm(parts["object"][7:10]), distance, rtol=1e-6)  # in the gripper's frame
    env.close()


def test_episode_is_truncated_at_the_horizon(robosuite_env):
    env = robosuite_env.RobosuiteEnv("Lift", horizon=3)
    env.reset(seed=0)
    ends = [env.step(np.zeros(7))[2:] for _ in range(3)]
    assert [(terminated, truncated) for terminated, truncated, _ in ends] == [(False, False)] * 2 + [(False, True)]
    assert ends[-1][2] == {"success": 0.0}
    with pytest.raises(ConfigError, match="unknown task"):
        robosuite_env.RobosuiteEnv("Stack")


@pytest.mark.parametrize("task", TASKS)
def test_demonstrations_load_end_in_success_and_replay(robosuite_env, task, tmp_path, capsys):
    from sscp.data import robosuite_demos, robosuite_scripts

    (path,) = robosuite_demos.make(TASKS[task], tmp_path, episodes=2, seed=0)
    assert path == tmp_path / f"{TASKS[task]}.hdf5" and "demonstrator success" in capsys.readouterr().out
    data = load_robomimic_hdf5(path)
    env = robosuite_env.RobosuiteEnv(task)
    assert data["observations"].shape[1:] == env.observation_space.shape and data["terminals"].sum() == 2
    with h5py.File(path, "r") as file:
        group = file["data"]
        env_args = json.loads(group.attrs["env_args"])
        assert env_args["env_name"] == task and env_args["type"] == 1
        assert env_args["env_kwargs"]["control_freq"] == 20
        assert group.attrs["total"] == len(data["actions"])
        for name in ("demo_0", "demo_1"):
            demo = group[name]
            steps = demo.attrs["num_samples"]
            assert demo.attrs["sscp_mode"] in robosuite_scripts.MODES[task]
            np.testing.assert_array_equal(demo["rewards"][:], np.arange(steps) == steps - 1)
            np.testing.assert_array_equal(demo["dones"][:], np.arange(steps) == steps - 1)
            _replay(env, demo)
    env.close()


def _replay(env, demo) -> None:
    """Checks that the demo's actions from its reset seed give its observations and success at its last step only."""
    obs, _ = env.reset(seed=int(demo.attrs["sscp_seed"]))
    stored = np.concatenate([demo["obs"][key][:] for key in DEFAULT_OBS_KEYS], axis=1)
    np.testing.assert_allclose(obs, stored[0], atol=1e-6)
    successes = [env.step(action)[4]["success"] for action in demo["actions"][:]]
    assert successes[-1] == 1.0 and not any(successes[:-1])


def test_too_many_failures_raise_data_error(robosuite_env, tmp_path, monkeypatch):
    from sscp.data import robosuite_demos, robosuite_scripts

    def standing_still(motion, task, mode, settle=20):
        yield from motion.hold(robosuite_scripts.OPEN, 2)

    monkeypatch.setattr(robosuite_scripts, "play", standing_still)
    with pytest.raises(DataError, match="succeeded in only 0 of 3"):
        robosuite_demos.make("lift-demos-v0", tmp_path, episodes=1)
    assert not list(tmp_path.iterdir())


def test_workers_make_the_same_file(robosuite_env, tmp_path):
    from sscp.data import robosuite_demos

    (serial,) = robosuite_demos.make("lift-demos-v0", tmp_path / "serial", episodes=3, seed=4)
    (parallel,) = robosuite_demos.make("lift-demos-v0", tmp_path / "parallel", episodes=3, seed=4, workers=2)
    with h5py.File(serial, "r") as a, h5py.File(parallel, "r") as b:
        assert sorted(a["data"]) == sorted(b["data"]) == ["demo_0", "demo_1", "demo_2"]
        for demo in a["data"]:
            np.testing.assert_array_equal(a[f"data/{demo}/actions"][...], b[f"data/{demo}/actions"][...])
            assert a[f"data/{demo}"].attrs["sscp_seed"] == b[f"data/{demo}"].attrs["sscp_seed"]
