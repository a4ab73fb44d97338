"""The Diffusion Policy zarr reader (Push-T's replay buffer layout): episodes flattened into transitions with episode
ends, actions rescaled to [-1, 1], one-line errors for bad stores; `sscp train --dataset FILE.zarr` trains without
evaluation."""

import zipfile

import numpy as np
import pytest
import zarr

from sscp import cli
from sscp.data import registry
from sscp.data.zarr_replay import action_bounds, load_zarr_replay, observation_bounds
from sscp.errors import DataError


def write(path, lengths=(3, 4), zarr_format=2, **changes):
    """Writes a Push-T-like store: state [N, 5] = (episode, step, 0, 0, 0), keypoint [N, 9, 2] = step, action [N, 2]
    = (100 + 10 * step, 400 - step) pixels, img [N, 40, 40, 3], meta/episode_ends; `changes` replace arrays."""
    episode = np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])
    step = np.concatenate([np.arange(n) for n in lengths]).astype(np.float32)
    arrays = {
        "data/state": np.stack([episode, step, 0 * step, 0 * step, 0 * step], 1).astype(np.float32),
        "data/keypoint": np.broadcast_to(step[:, None, None], (len(step), 9, 2)).astype(np.float32),
        "data/action": np.stack([100 + 10 * step, 400 - step], 1).astype(np.float32),
        "data/img": np.zeros((len(step), 40, 40, 3), np.float32),
        "meta/episode_ends": np.cumsum(lengths).astype(np.int64),
    }
    arrays.update(changes)
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    for key, value in arrays.items():
        if value is not None:
            root.create_array(key, data=np.asarray(value))
    return path


def test_episodes_become_transitions_and_actions_are_rescaled(tmp_path):
    data = load_zarr_replay(write(tmp_path / "pusht.zarr"), rescale_observations=False)
    # episodes of 3 and 4 steps give 2 + 3 transitions (each episode's last step has no next observation)
    np.testing.assert_array_equal(data["observations"][:, :2], [[0, 0], [0, 1], [1, 0], [1, 1], [1, 2]])
    np.testing.assert_array_equal(data["next_observations"][:, 1], data["observations"][:, 1] + 1)
    np.testing.assert_array_equal(data["terminals"], [0, 1, 0, 0, 1])
    assert data["rewards"].tolist() == [0] * 5 and data["masks"].tolist() == [1] * 5
    # actions: x in [100, 130] and y in [397, 400] over the whole store, rescaled to [-1, 1] per dimension
    np.testing.assert_allclose(data["actions"][:, 0], [-1, -1 / 3, -1, -1 / 3, 1 / 3], atol=1e-6)
    np.testing.assert_allclose(data["actions"][:, 1], [1, 1 / 3, 1, 1 / 3, -1 / 3], atol=1e-6)
    low, high = action_bounds(tmp_path / "pusht.zarr")
    np.testing.assert_array_equal(low, [100, 397])
    np.testing.assert_array_equal(high, [130, 400])
    pixels = low + (data["actions"] + 1) / 2 * (high - low)  # the documented way back
    np.testing.assert_allclose(pixels[:, 0], 100 + 10 * data["observations"][:, 1], atol=1e-4)

    both = load_zarr_replay(tmp_path / "pusht.zarr", ("state", "keypoint"))
    assert both["observations"].shape == (5, 5 + 18)


def test_observations_outside_one_are_rescaled_per_dimension_and_the_env_can_do_the_same(tmp_path):
    path = write(tmp_path / "pusht.zarr")  # state = (episode 0..1, step 0..3, 0, 0, 0) over the whole store
    raw = load_zarr_replay(path, rescale_observations=False)["observations"]
    data = load_zarr_replay(path)
    low, high = observation_bounds(path)
    np.testing.assert_array_equal(low, [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(high, [1, 3, 0, 0, 0])
    np.testing.assert_allclose(data["observations"][:, 1], 2 * raw[:, 1] / 3 - 1, atol=1e-6)
    np.testing.assert_array_equal(data["observations"][:, 2:], -1)  # constant dimensions map to -1
    np.testing.assert_allclose(data["next_observations"][:, 1], 2 * raw[:, 1] / 3 - 1 + 2 / 3, atol=1e-6)
    small = write(tmp_path / "small.zarr", **{"data/state": np.full((7, 5), 0.5, np.float32)})
    assert (load_zarr_replay(small)["observations"] == 0.5).all()  # already within [-1, 1]: left as they are
    assert observation_bounds(small)[0].tolist() == [-1] * 5


def test_zarr_v3_stores_and_zip_files_read_the_same(tmp_path):
    reference = load_zarr_replay(write(tmp_path / "v2.zarr"))
    v3 = load_zarr_replay(write(tmp_path / "v3.zarr", zarr_format=3))
    with zipfile.ZipFile(tmp_path / "pusht.zarr.zip", "w") as z:  # Diffusion Policy ships .zarr.zip files
        for f in (tmp_path / "v2.zarr").rglob("*"):
            z.write(f, f.relative_to(tmp_path / "v2.zarr"))
    zipped = load_zarr_replay(tmp_path / "pusht.zarr.zip")
    for other in (v3, zipped):
        for key, value in reference.items():
            np.testing.assert_array_equal(other[key], value)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"data/action": None}, r"key 'data/action' is missing \(the store has \['data/img'"),
        ({"meta/episode_ends": np.array([3, 6])}, r"key 'meta/episode_ends' ends at step 6 but 'data/action' has 7"),
        ({"meta/episode_ends": np.array([3, 3, 7])}, r"'meta/episode_ends' is not strictly increasing .*entry 1: 3"),
        ({"data/state": np.full((7, 5), np.nan, np.float32)}, r"key 'data/state' has 35 NaN values \(first at row 0\)"),
        ({"data/state": np.zeros((6, 5), np.float32)}, r"key 'data/state' has 6 rows but 'data/action' has 7"),
        ({"meta/episode_ends": np.array([1, 2, 3, 4, 5, 6, 7])}, r"has only one-step episodes, so no transition"),
    ],
)
def test_bad_stores_fail_in_one_line_naming_the_key(tmp_path, changes, message):
    with pytest.raises(DataError, match=message) as error:
        load_zarr_replay(write(tmp_path / "bad.zarr", **changes))
    assert str(error.value).startswith(str(tmp_path / "bad.zarr")) and "\n" not in str(error.value)


def test_images_and_missing_or_foreign_stores_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"'data/img' has shape \(7, 40, 40, 3\): 4800 numbers per step, an image"):
        load_zarr_replay(write(tmp_path / "pusht.zarr"), ("state", "img"))
    with pytest.raises(DataError, match=r"missing.zarr: does not exist"):
        load_zarr_replay(tmp_path / "missing.zarr")
    (tmp_path / "text.zarr.zip").write_text("not a zip")
    with pytest.raises(DataError, match=r"text.zarr.zip: is not a readable zarr group \(BadZipFile"):
        load_zarr_replay(tmp_path / "text.zarr.zip")


@pytest.mark.slow
def test_bc_trains_on_a_zarr_store_without_evaluation(capsys, tmp_path, monkeypatch):
    from sscp import sims

    monkeypatch.setattr(sims, "available", lambda module: False)  # as on a machine without the extra
    data = str(write(tmp_path / "pusht.zarr", lengths=(10, 12)))
    spec = registry.resolve(data)
    assert spec.format == "zarr" and spec.env_name is None and "sscp[pusht]" in spec.env_note
    run = tmp_path / "run"
    args = ["train", "--agent", "sscp_bc", "--dataset", data, "--run-dir", str(run), "--log-every", "10"]
    args += ["--steps", "20", "--no-progress", "--agent.batch-size", "16", "--agent.hidden-dims", "16", "16"]
    code = cli.main([*args, "--agent.time-embed-dim", "16"])
    out, _ = capsys.readouterr()
    assert code == 0 and "no evaluation: no gym-pusht to evaluate Push-T in: pip install 'sscp[pusht]'" in out
    assert (run / "checkpoints" / "step_0000000020.ckpt").is_file() and not (run / "eval.csv").exists()


def test_a_push_t_store_evaluates_in_push_t_with_its_bounds_when_gym_pusht_is_installed(tmp_path, monkeypatch):
    from sscp import sims
    from sscp.envs import split_env_name

    monkeypatch.setattr(sims, "available", lambda module: True)
    env_id, kwargs = split_env_name(registry.resolve(str(write(tmp_path / "pusht.zarr"))).env_name)
    assert (
        env_id == "sscp/PushT-v0" and kwargs["action_low"] == [100.0, 397.0] and kwargs["action_high"] == [130.0, 400.0]
    )
    assert kwargs["obs_low"] == [0.0] * 5 and kwargs["obs_high"] == [1.0, 3.0, 0.0, 0.0, 0.0]
    other = registry.resolve(str(write(tmp_path / "other.zarr", **{"data/state": np.zeros((7, 3), np.float32)})))
    assert other.env_name is None and "not Push-T's" in other.env_note
