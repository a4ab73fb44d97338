"""The Robomimic HDF5 reader: demos flattened into transitions with episode ends, and one-line errors for bad files;
`sscp train --dataset FILE.hdf5` on Robomimic data: the robosuite task its env_args name evaluates it where robosuite
is installed; elsewhere it is trained, checkpointed and resumed, but not evaluated."""

import csv

import h5py
import numpy as np
import pytest

from sscp import cli
from sscp.data import d4rl, registry
from sscp.data.dataset import stack_tasks
from sscp.data.robomimic import load_robomimic_hdf5
from sscp.errors import DataError

KEYS = ("object", "robot0_eef_pos")


def write(path, demos: dict, next_obs: bool = True):
    """Writes demos {name: steps}: obs object = (i, step), robot0_eef_pos = step (3 copies), robot0_eef_quat and
    robot0_gripper_qpos zeros (robomimic's default keys are all there), actions = step / 10."""
    with h5py.File(path, "w") as f:
        for name, steps in demos.items():
            g = f.create_group(f"data/{name}")
            i = int(name.split("_")[1])
            t = np.arange(steps, dtype=np.float32)

            def obs(t, i=i):
                return {
                    "object": np.stack([np.full(len(t), i), t], 1),
                    "robot0_eef_pos": np.repeat(t[:, None], 3, 1),
                    "robot0_eef_quat": np.zeros((len(t), 4)),
                    "robot0_gripper_qpos": np.zeros((len(t), 2)),
                }

            for key, value in obs(t).items():
                g.create_dataset(f"obs/{key}", data=value)
            if next_obs:
                for key, value in obs(t + 1).items():
                    g.create_dataset(f"next_obs/{key}", data=value)
            g.create_dataset("obs/agentview_image", data=np.zeros((steps, 4, 4, 3), np.uint8))
            g.create_dataset("actions", data=np.repeat(t[:, None] / 10, 2, 1))
            g.create_dataset("rewards", data=(t == steps - 1).astype(np.float32))
            g.create_dataset("dones", data=(t == steps - 1).astype(np.int64))
    return path


def test_demos_become_transitions_in_numeric_order(tmp_path):
    data = load_robomimic_hdf5(write(tmp_path / "lift.hdf5", {"demo_10": 2, "demo_2": 3}), KEYS)
    np.testing.assert_array_equal(data["observations"][:, 0], [2, 2, 2, 10, 10])  # demo_2 before demo_10
    np.testing.assert_array_equal(data["observations"][0], [2, 0, 0, 0, 0])  # keys concatenated in the given order
    np.testing.assert_array_equal(data["next_observations"][1], [2, 2, 2, 2, 2])
    np.testing.assert_array_equal(data["terminals"], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(data["masks"], [1, 1, 0, 1, 0])
    reordered = load_robomimic_hdf5(tmp_path / "lift.hdf5", KEYS[::-1])
    np.testing.assert_array_equal(reordered["observations"][0], [0, 0, 0, 2, 0])
    # the episode boundaries reach the chunk sampler
    episodes = np.asarray(stack_tasks([data], ["env"], ["lift.hdf5"]).episodes)
    np.testing.assert_array_equal(episodes, [[0, 2]] * 3 + [[3, 4]] * 2)


def test_without_next_obs_each_demos_last_step_is_dropped(tmp_path):
    data = load_robomimic_hdf5(write(tmp_path / "lift.hdf5", {"demo_0": 3, "demo_1": 4}, next_obs=False), KEYS)
    assert len(data["observations"]) == 2 + 3
    np.testing.assert_array_equal(data["next_observations"][:2, 1], [1, 2])
    np.testing.assert_array_equal(data["terminals"], [0, 1, 0, 0, 1])


def damage(path, edit):
    with h5py.File(path, "a") as f:
        edit(f)
    return path


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda f: f.__delitem__("data/demo_0/actions"), r"key 'data/demo_0/actions' is missing"),
        (lambda f: f.__delitem__("data/demo_1/obs/object"), r"key 'data/demo_1/obs/object' is missing"),
        (lambda f: f.move("data", "stuff"), r"key 'data' is missing \(the file has \['stuff'\]\)"),
        (
            lambda f: f["data/demo_0/actions"].__setitem__((0, 0), 5.0),
            r"key 'data/demo_0/actions' has 1 values outside \[-1, 1\]",
        ),
        (
            lambda f: (f.__delitem__("data/demo_0/dones"), f.create_dataset("data/demo_0/dones", data=[0, 2, 1])),
            r"key 'data/demo_0/dones' has 1 values other than 0 and 1",
        ),
        (
            lambda f: (f.__delitem__("data/demo_0/rewards"), f.create_dataset("data/demo_0/rewards", data=[0.0, 1.0])),
            r"key 'data/demo_0/rewards' has 2 rows but 'data/demo_0/actions' has 3",
        ),
        (
            lambda f: f["data/demo_1/obs/robot0_eef_pos"].__setitem__((0, 0), np.nan),
            r"key 'data/demo_1/obs/robot0_eef_pos' has 1 NaN values \(first at row 0\)",
        ),
    ],
)
def test_malformed_files_get_one_line_errors(tmp_path, edit, message):
    path = damage(write(tmp_path / "bad.hdf5", {"demo_0": 3, "demo_1": 2}), edit)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'bad.hdf5'}: {message}") as info:
        load_robomimic_hdf5(path, KEYS)
    assert "\n" not in str(info.value) and "Robomimic" in str(info.value)


def test_image_keys_and_unreadable_files_are_refused(tmp_path):
    path = write(tmp_path / "img.hdf5", {"demo_0": 2})
    with pytest.raises(DataError, match=r"key 'data/demo_0/obs/agentview_image' has shape \(2, 4, 4, 3\)"):
        load_robomimic_hdf5(path, ("object", "agentview_image"))
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.hdf5: is not a readable HDF5 file"):
        load_robomimic_hdf5(tmp_path / "junk.hdf5", KEYS)
    with pytest.raises(DataError, match="missing.hdf5: does not exist"):
        load_robomimic_hdf5(tmp_path / "missing.hdf5", KEYS)


# ---- sscp train --dataset FILE.hdf5 ---------------------------------------------------------------------------------


def test_resolve_tells_robomimic_from_d4rl_files(tmp_path):
    spec = registry.resolve(str(write(tmp_path / "lift.hdf5", {"demo_0": 3})))
    assert (spec.format, spec.env_name) == ("robomimic", None) and "no env_args naming" in spec.env_note
    transitions = {k: np.zeros((4, 3)) for k in ("observations", "next_observations")}
    transitions |= {"actions": np.zeros((4, 2)), "rewards": np.zeros(4), "terminals": np.zeros(4)}
    d4rl.save_d4rl_hdf5(tmp_path / "hopper-medium-v2.hdf5", transitions)
    assert registry.resolve(str(tmp_path / "hopper-medium-v2.hdf5")).format == "d4rl"
    no_demos = damage(write(tmp_path / "empty.hdf5", {"demo_0": 3}), lambda f: f.move("data/demo_0", "data/other"))
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    for path in (no_demos, tmp_path / "junk.hdf5", tmp_path / "missing.hdf5"):  # the D4RL reader reports these
        assert registry.resolve(str(path)).format == "d4rl"
    train, val = registry.load(spec)
    assert train["observations"].shape == (3, 2 + 3 + 4 + 2) and val is None  # the default keys, concatenated


def sscp(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_file_names_its_robosuite_task_and_evaluates_there_when_robosuite_is_installed(tmp_path, monkeypatch):
    from sscp import sims

    path = write(tmp_path / "file.hdf5", {"demo_0": 3})
    assert registry.resolve(str(path)).env_name is None  # no env_args: no task named
    assert "no env_args naming a robosuite task" in registry.resolve(str(path)).env_note
    with h5py.File(path, "a") as f:
        f["data"].attrs["env_args"] = '{"env_name": "PickPlaceCan", "type": 1, "env_kwargs": {}}'
    monkeypatch.setattr(sims, "available", lambda module: True)
    assert registry.resolve(str(path)).env_name == "sscp/PickPlaceCan-v0"
    monkeypatch.setattr(sims, "available", lambda module: False)
    spec = registry.resolve(str(path))
    assert (
        spec.env_name is None
        and spec.env_note == "no robosuite to evaluate PickPlaceCan in: pip install 'sscp[robomimic]'"
    )


def test_bc_trains_and_resumes_on_a_robomimic_file_without_evaluation(capsys, tmp_path, monkeypatch):
    from sscp import sims

    monkeypatch.setattr(sims, "available", lambda module: False)  # as on a machine without the extra
    data = str(write(tmp_path / "lift.hdf5", {"demo_0": 10, "demo_1": 10}))
    with h5py.File(data, "a") as f:
        f["data"].attrs["env_args"] = '{"env_name": "Lift", "type": 1}'
    run = tmp_path / "run"
    args = ["train", "--agent", "bc", "--dataset", data, "--run-dir", str(run), "--log-every", "10", "--no-progress"]
    args += ["--save-every", "20", "--agent.batch-size", "16", "--agent.hidden-dims", "16", "16"]
    code, out, _ = sscp(capsys, *args, "--steps", "20")
    assert code == 0 and "no evaluation: no robosuite to evaluate Lift in: pip install 'sscp[robomimic]'" in out
    assert "not evaluated" in out and "eval.csv" not in out.split("run folder:")[1]  # the final table says so
    assert [r["step"] for r in rows(run / "train.csv")] == ["10", "20"]
    assert not (run / "eval.csv").exists()
    assert (run / "curves.png").stat().st_size > 0  # the loss curves, without an evaluation panel
    assert (run / "checkpoints" / "step_0000000020.ckpt").is_file()
    code, out, _ = sscp(capsys, *args, "--steps", "30")  # the same run, trained on
    assert code == 0 and f"resuming {run} from step 20" in out
    assert [r["step"] for r in rows(run / "train.csv")] == ["10", "20", "30"]
    code, _, err = sscp(capsys, "eval", str(run))
    assert code == 2 and err.count("\n") == 1 and "cannot be evaluated: no robosuite to evaluate Lift in" in err
    code, _, err = sscp(capsys, *args, "--online-steps", "10", "--run-dir", str(tmp_path / "online"))
    assert code == 2 and err.count("\n") == 1 and "--online-steps acts in the dataset's environment" in err


def test_train_stops_at_a_malformed_robomimic_file_in_one_line(capsys, tmp_path):
    path = write(tmp_path / "bad.hdf5", {"demo_0": 3})
    damage(path, lambda f: f["data/demo_0/actions"].__setitem__((1, 1), 5))
    code, _, err = sscp(capsys, "train", "--agent", "bc", "--dataset", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"sscp: error: {path}: key 'data/demo_0/actions' has 1 values outside [-1, 1]")
