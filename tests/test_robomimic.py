"""The Robomimic HDF5 reader: demos flattened into transitions with episode ends, and one-line errors for bad files."""

import h5py
import numpy as np
import pytest

from sscp.data.dataset import stack_tasks
from sscp.data.robomimic import load_robomimic_hdf5
from sscp.errors import DataError

KEYS = ("object", "robot0_eef_pos")


def write(path, demos: dict, next_obs: bool = True):
    """Writes demos {name: steps}: obs object = (i, step), robot0_eef_pos = step (3 copies), actions = step / 10."""
    with h5py.File(path, "w") as f:
        for name, steps in demos.items():
            g = f.create_group(f"data/{name}")
            i = int(name.split("_")[1])
            t = np.arange(steps, dtype=np.float32)

            def obs(t, i=i):
                return {"object": np.stack([np.full(len(t), i), t], 1), "robot0_eef_pos": np.repeat(t[:, None], 3, 1)}

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
