"""D4RL HDF5 and Minari datasets: preprocessing, reference scores, env mapping, one-line errors for damaged files
(with hypothesis fuzzing, as tests/test_data.py does for .npz), export round trips and training from a user's file."""

import json
import tempfile
from pathlib import Path

import gymnasium
import h5py
import numpy as np
import pytest
from conftest import BASE_DATASET, TASKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sscp import cli
from sscp.data import d4rl, minari_data, registry
from sscp.data.dataset import load_offline_data
from sscp.data.formats import load_ogbench_npz
from sscp.envs import EnvPool, normalized_score
from sscp.errors import ConfigError, DataError
from sscp.evaluate import evaluate
from sscp.online import OnlineEnvs

KEYS = ("observations", "actions", "next_observations", "rewards", "masks", "terminals")


def _d4rl_arrays(next_obs: bool = False) -> dict[str, np.ndarray]:
    """Two episodes: rows 0-3 end in a terminal, rows 4-7 in a timeout (row 7), in D4RL's per-row layout."""
    rng = np.random.default_rng(0)
    arrays = {
        "observations": rng.normal(size=(8, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(8, 2)).astype(np.float32),
        "rewards": np.arange(8, dtype=np.float32),
        "terminals": np.arange(8) == 3,
        "timeouts": np.arange(8) == 7,
    }
    if next_obs:
        arrays["next_observations"] = rng.normal(size=(8, 3)).astype(np.float32)
    return arrays


def _write_h5(path: Path, arrays: dict) -> Path:
    with h5py.File(path, "w") as file:
        for key, values in arrays.items():
            file.create_dataset(key, data=values)
    return path


def test_d4rl_preprocessing_follows_qlearning_dataset(tmp_path):
    """d4rl.qlearning_dataset, as the SSCP authors' code loads D4RL: next observation = the next row's, rows marked as
    timeouts (terminal or not) and the file's last row dropped, masks = 1 − terminals, the file's own
    next_observations not read. A hand-made file whose expected transitions are written out below."""
    obs = np.stack([np.arange(9), 10 + np.arange(9)], axis=1).astype(np.float32)  # row i is (i, 10 + i)
    raw = {
        "observations": obs,
        "next_observations": np.full((9, 2), 999.0, np.float32),  # not read, as qlearning_dataset does not read it
        "actions": np.linspace(-1, 1, 9, dtype=np.float32)[:, None],
        "rewards": np.arange(9, dtype=np.float32),
        # episodes: rows 0-2 end in a terminal, 3-5 in a timeout, 6-7 in a row that is both, 8 a terminal (last row)
        "terminals": np.isin(np.arange(9), [2, 7, 8]),
        "timeouts": np.isin(np.arange(9), [5, 7]),
    }
    data = d4rl.load_d4rl_hdf5(_write_h5(tmp_path / "hopper-medium-v2.hdf5", raw))
    expected = {  # (observation, next observation, reward, mask, episode end) of each kept transition
        0: ((0, 10), (1, 11), 0, 1, 0),
        1: ((1, 11), (2, 12), 1, 1, 0),
        2: ((2, 12), (3, 13), 2, 0, 1),
        3: ((3, 13), (4, 14), 3, 1, 0),
        4: ((4, 14), (5, 15), 4, 1, 1),  # the next row is a timeout: its episode ends here
        6: ((6, 16), (7, 17), 6, 1, 1),
    }
    rows = list(expected.values())
    np.testing.assert_array_equal(data["observations"], [r[0] for r in rows])
    np.testing.assert_array_equal(data["next_observations"], [r[1] for r in rows])
    np.testing.assert_array_equal(data["rewards"], [r[2] for r in rows])
    np.testing.assert_array_equal(data["masks"], [r[3] for r in rows])
    np.testing.assert_array_equal(data["terminals"], [r[4] for r in rows])
    np.testing.assert_array_equal(data["actions"], raw["actions"][list(expected)])
    assert all(data[k].dtype == np.float32 for k in KEYS)


def test_d4rl_files_written_by_sscp_keep_every_row(tmp_path):
    """An export keeps each row's own next observation (attribute next_observations_per_row), so it loads back
    unchanged, timed-out last transitions included."""
    loaded = d4rl.load_d4rl_hdf5(_write_h5(tmp_path / "hopper-medium-v2.hdf5", _d4rl_arrays()))
    d4rl.save_d4rl_hdf5(tmp_path / "again.hdf5", loaded)
    again = d4rl.load_d4rl_hdf5(tmp_path / "again.hdf5")
    for key in KEYS:
        np.testing.assert_array_equal(again[key], loaded[key], err_msg=key)
    with h5py.File(tmp_path / "again.hdf5", "r+") as file:  # the same file without the mark: D4RL's convention
        del file.attrs[d4rl.PER_ROW_ATTR]
    assert len(d4rl.load_d4rl_hdf5(tmp_path / "again.hdf5")["observations"]) < len(loaded["observations"])


def test_antmaze_rewards_shift_by_name_and_option(tmp_path):
    path = _write_h5(tmp_path / "antmaze-umaze-v2.hdf5", _d4rl_arrays())
    np.testing.assert_array_equal(d4rl.load_d4rl_hdf5(path)["rewards"], np.arange(7) - 1.0)
    np.testing.assert_array_equal(d4rl.load_d4rl_hdf5(path, reward_shift=0.0)["rewards"], np.arange(7))


def test_reference_scores_and_env_ids():
    assert d4rl.reference_scores("hopper-medium-v2") == (-20.272305, 3234.3)
    assert d4rl.reference_scores("/data/halfcheetah-medium-expert-v2.hdf5") == (-280.178953, 12135.0)
    assert d4rl.reference_scores("antmaze-large-diverse-v2") == (0.0, 1.0)
    assert d4rl.reference_scores("pen-human-v1") == (96.262799, 3076.8331017826877)
    assert d4rl.reference_scores("kitchen-mixed-v0") == (0.0, 4.0)
    assert d4rl.reference_scores("my-data") is None
    assert normalized_score(3234.3, (-20.272305, 3234.3)) == pytest.approx(100.0)
    assert normalized_score(-20.272305, (-20.272305, 3234.3)) == pytest.approx(0.0)
    assert np.isnan(normalized_score(1.0, None))
    assert d4rl.env_id("walker2d-medium-replay-v2")[0] == "Walker2d-v5"
    assert "approximate" in d4rl.env_id("hopper-medium-v2")[1]
    env, note = d4rl.env_id("ant-medium-v2")
    assert env is None and "111" in note
    assert d4rl.env_id("antmaze-umaze-v2")[0] is None


def test_d4rl_names_and_paths_resolve(tmp_path):
    spec = registry.resolve("hopper-medium-v2", tmp_path)
    assert spec.format == "d4rl" and spec.train_path == tmp_path / "hopper-medium-v2.hdf5"
    assert spec.env_name == "Hopper-v5" and spec.ref_scores == (-20.272305, 3234.3)
    with pytest.raises(DataError, match="dataset file not found; place the D4RL"):
        registry.load(spec)
    spec = registry.resolve(str(tmp_path / "antmaze-umaze-v2.hdf5"))
    assert spec.format == "d4rl" and spec.env_name is None and "gymnasium-robotics" in spec.env_note
    with pytest.raises(ConfigError, match="no Minari dataset nope/x-v0"):
        registry.resolve("nope/x-v0")


@pytest.mark.parametrize(
    ("file", "env", "scores", "shift"),
    [
        ("hopper_medium-v2.hdf5", "Hopper-v5", (-20.272305, 3234.3), 0.0),
        ("halfcheetah_medium_replay-v2.hdf5", "HalfCheetah-v5", (-280.178953, 12135.0), 0.0),
        ("walker2d_medium_expert-v2.hdf5", "Walker2d-v5", (1.629008, 4592.3), 0.0),
        ("antmaze_umaze-v2.hdf5", None, (0.0, 1.0), -1.0),
        ("Ant_maze_big-maze_noisy_multistart_True_multigoal_True_sparse_fixed.hdf5", None, (0.0, 1.0), -1.0),
        ("Ant_maze_u-maze_noisy_multistart_False_multigoal_False_sparse.hdf5", None, (0.0, 1.0), -1.0),
    ],
)
def test_d4rl_own_file_names_are_d4rl_datasets(tmp_path, file, env, scores, shift):
    """The names D4RL gives its downloaded files choose the same environment, reference scores and reward shift as
    the dataset names (antmaze-medium-diverse-v2, antmaze-umaze-v0 for the two antmaze files)."""
    spec = registry.resolve(str(tmp_path / file))
    assert spec.format == "d4rl" and spec.env_name == env and spec.ref_scores == scores
    assert d4rl.default_reward_shift(file) == shift
    assert d4rl.reference_scores("my_data-v2.hdf5") is None


def _truncated(path: Path) -> None:
    _write_h5(path, {**_d4rl_arrays(), "observations": np.zeros((4000, 3), np.float32)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


D4RL_CASES = {
    "missing key": ({"timeouts": None}, "timeouts", "is missing"),
    "mismatched lengths": ({"rewards": np.zeros(5, np.float32)}, "rewards", "5 rows but 'observations' has 8"),
    "nan": ({"observations": np.full((8, 3), np.nan, np.float32)}, "observations", "24 NaN values (first at row 0)"),
    "inf reward": ({"rewards": np.array([0, 0, np.inf, 0, 0, 0, 0, 0])}, "rewards", "1 infinite"),
    "string dtype": ({"actions": np.full((8, 2), b"a")}, "actions", "dtype |S1"),
    "int observations": ({"observations": np.ones((8, 3), np.int64)}, "observations", "dtype int64"),
    "terminal not 0/1": ({"terminals": np.full(8, 2)}, "terminals", "other than 0 and 1"),
    "actions out of range": ({"actions": np.full((8, 2), 3.0, np.float32)}, "actions", "outside [-1, 1]"),
    "wrong ndim": ({"observations": np.zeros(8, np.float32)}, "observations", "shape (8,)"),
    "empty": (
        {k: np.zeros((0, 2)) if k in ("observations", "actions") else np.zeros(0) for k in d4rl.REQUIRED_KEYS},
        "observations",
        "no rows",
    ),
    "all timeouts": ({"timeouts": np.ones(8, bool), "terminals": np.zeros(8, bool)}, "timeouts", "every row"),
    "truncated": (_truncated, None, "not a readable HDF5 file"),
    "not hdf5": (lambda path: path.write_text("observations,actions\n"), None, "not a readable HDF5 file"),
}


@pytest.mark.parametrize("case", D4RL_CASES)
def test_damaged_d4rl_file_raises_one_line_error(tmp_path, case):
    change, key, problem = D4RL_CASES[case]
    path = tmp_path / "hopper-medium-v2.hdf5"
    if callable(change):
        change(path)
    else:
        arrays = {k: v for k, v in {**_d4rl_arrays(), **change}.items() if v is not None}
        if case == "empty":
            arrays = change
        _write_h5(path, arrays)
    with pytest.raises(DataError) as error:
        d4rl.load_d4rl_hdf5(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and problem in message
    assert key is None or f"key '{key}'" in message


def test_group_in_place_of_an_array(tmp_path):
    path = tmp_path / "x.hdf5"
    arrays = _d4rl_arrays()
    with h5py.File(path, "w") as file:
        for key in ("observations", "actions", "rewards", "terminals"):
            file.create_dataset(key, data=arrays[key])
        file.create_group("timeouts")
    with pytest.raises(DataError, match="key 'timeouts' is a Group, expected an array"):
        d4rl.load_d4rl_hdf5(path)


@st.composite
def _h5_contents(draw):
    steps = draw(st.integers(0, 6))
    arrays = {}
    for key, width in (("observations", 2), ("actions", 1), ("rewards", None), ("terminals", None), ("timeouts", None)):
        if draw(st.integers(0, 19)) == 0:
            continue
        rows = steps if draw(st.integers(0, 9)) else draw(st.integers(0, 6))
        shape = (rows,) if width is None else draw(st.sampled_from([(rows, width), (rows,)]))
        dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.bool_, "S2"]))
        elements = None
        if np.dtype(dtype).kind == "f":
            elements = st.floats(-2, 2, width=np.dtype(dtype).itemsize * 8) | st.sampled_from([np.nan, np.inf])
        elif np.dtype(dtype).kind == "i":
            elements = st.integers(0, 2)
        arrays[key] = draw(hnp.arrays(dtype, shape, elements=elements))
    cut = draw(st.none() | st.floats(0, 1))
    return arrays, cut


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_h5_contents())
def test_any_d4rl_file_loads_or_raises_data_error(contents):
    arrays, cut = contents
    with tempfile.TemporaryDirectory() as folder:
        path = _write_h5(Path(folder) / "random.hdf5", arrays)
        if cut is not None:
            data = path.read_bytes()
            path.write_bytes(data[: int(cut * len(data))])
        try:
            dataset = d4rl.load_d4rl_hdf5(path)
        except DataError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            return
    n = len(dataset["observations"])
    assert n > 0 and all(len(dataset[k]) == n and dataset[k].dtype == np.float32 for k in KEYS)
    assert np.all(np.abs(dataset["actions"]) <= 1.0) and dataset["terminals"][-1] == 1
    assert all(np.isfinite(dataset[k]).all() for k in KEYS)


# --- Minari ---


def _transitions(episodes=(3, 2), obs_dim=3, act_dim=2, seed=0) -> dict[str, np.ndarray]:
    """Contiguous episodes of transitions as the loaders return them; the first ends in a termination."""
    rng = np.random.default_rng(seed)
    parts = {k: [] for k in KEYS}
    for i, steps in enumerate(episodes):
        obs = rng.normal(size=(steps + 1, obs_dim)).astype(np.float32)
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(rng.uniform(-1, 1, (steps, act_dim)).astype(np.float32))
        parts["rewards"].append(rng.normal(size=steps).astype(np.float32))
        parts["masks"].append(np.where(np.arange(steps) == steps - 1, float(i != 0), 1.0).astype(np.float32))
        parts["terminals"].append((np.arange(steps) == steps - 1).astype(np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _assert_same(a: dict, b: dict, keys=KEYS) -> None:
    for key in keys:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_minari_write_then_read_matches_minari_itself(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    data = _transitions()
    minari_data.save_minari(tmp_path / "sscp/toy-v0", "sscp/toy-v0", data, "Hopper-v5", (0.0, 10.0))
    _assert_same(minari_data.load_minari(minari_data.data_folder("sscp/toy-v0")), data)
    theirs = minari.load_dataset("sscp/toy-v0")
    assert theirs.env_spec.id == "Hopper-v5" and theirs.total_steps == 5
    episodes = list(theirs.iterate_episodes())
    np.testing.assert_array_equal(episodes[0].observations[:-1], data["observations"][:3])
    assert episodes[0].terminations.tolist() == [False, False, True] and episodes[1].truncations[-1]
    spec = registry.resolve("sscp/toy-v0")
    assert spec.format == "minari" and spec.env_name == "Hopper-v5" and spec.ref_scores == (0.0, 10.0)
    assert registry.resolve(str(tmp_path / "sscp/toy-v0")).train_path == spec.train_path
    with pytest.raises(ConfigError, match="already exists"):
        minari_data.save_minari(tmp_path / "sscp/toy-v0", "sscp/toy-v0", data)


def _minari_folder(tmp_path: Path, episodes: dict[str, dict], metadata: dict | None = None) -> Path:
    folder = tmp_path / "ds" / "data"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(metadata or {"dataset_id": "ds-v0", "env_spec": None}))
    with h5py.File(folder / "main_data.hdf5", "w") as file:
        for name, arrays in episodes.items():
            group = file.create_group(name)
            for key, values in arrays.items():
                if isinstance(values, dict):
                    sub = group.create_group(key)
                    for k, v in values.items():
                        sub.create_dataset(k, data=v)
                else:
                    group.create_dataset(key, data=values)
    return folder


def _episode(steps=3, **changes):
    episode = {
        "observations": np.zeros((steps + 1, 2), np.float32),
        "actions": np.zeros((steps, 1), np.float32),
        "rewards": np.ones(steps),
        "terminations": np.zeros(steps, bool),
        "truncations": np.arange(steps) == steps - 1,
    }
    return {**episode, **changes}


MINARI_CASES = {
    "obs length": ({"observations": np.zeros((3, 2), np.float32)}, "episode_0/observations", "expected 4"),
    "reward length": ({"rewards": np.ones(2)}, "episode_0/rewards", "2 rows but 'episode_0/actions' has 3"),
    "nan": ({"actions": np.full((3, 1), np.nan, np.float32)}, "episode_0/actions", "NaN"),
    "missing": ({"terminations": None}, "episode_0/terminations", "is missing"),
    "dict observations": ({"observations": {"observation": np.zeros((4, 2))}}, "episode_0/observations", "dictionary"),
}


@pytest.mark.parametrize("case", MINARI_CASES)
def test_damaged_minari_dataset_raises_one_line_error(tmp_path, case):
    change, key, problem = MINARI_CASES[case]
    episode = {k: v for k, v in _episode(**change).items() if v is not None}
    folder = _minari_folder(tmp_path, {"episode_0": episode})
    with pytest.raises(DataError) as error:
        minari_data.load_minari(folder)
    message = str(error.value)
    assert message.startswith(f"{folder / 'main_data.hdf5'}: key '{key}' ") and problem in message
    assert "\n" not in message


def test_minari_metadata_problems(tmp_path):
    folder = _minari_folder(tmp_path, {"episode_0": _episode()})
    (folder / "metadata.json").write_text("{not json")
    with pytest.raises(DataError, match="metadata.json: is not readable JSON"):
        minari_data.load_minari(folder)
    spec_folder = _minari_folder(tmp_path / "b", {"episode_0": _episode()}, {"env_spec": json.dumps({"id": "Nope-v9"})})
    spec = registry.resolve(str(spec_folder.parent))
    assert spec.env_name is None and "Nope-v9" in spec.env_note


def _hopper_spec(**changes) -> str:
    """Returns Hopper-v5's env spec as Minari stores it (gymnasium's EnvSpec JSON), with `changes` to its fields."""
    return json.dumps({**json.loads(gymnasium.spec("Hopper-v5").to_json()), **changes})


def _hopper_folder(tmp_path: Path, key: str = "env_spec", **changes) -> Path:
    """Returns the data/ folder of a one-episode Minari dataset of Hopper-v5's sizes whose spec under `key` has
    `changes`."""
    episode = _episode(observations=np.zeros((4, 11), np.float32), actions=np.zeros((3, 3), np.float32))
    return _minari_folder(tmp_path, {"episode_0": episode}, {"dataset_id": "ds-v0", key: _hopper_spec(**changes)})


def test_minari_env_spec_kwargs_make_the_evaluation_and_online_envs(tmp_path):
    folder = _hopper_folder(tmp_path, kwargs={"reset_noise_scale": 0.01, "render_mode": None}, max_episode_steps=50)
    (name,) = load_offline_data((str(folder.parent),)).env_names
    assert name == 'Hopper-v5{"max_episode_steps": 50, "reset_noise_scale": 0.01}'
    online = OnlineEnvs([name], [0])
    try:
        assert online.envs[0].unwrapped._reset_noise_scale == 0.01
    finally:
        online.close()
    pool = EnvPool(1)
    try:  # a zero-action Hopper stands for about 120 steps; the dataset's time limit ends it at 50
        act = lambda runs, obs, step: np.zeros((len(obs), 3), np.float32)  # noqa: E731
        assert evaluate(act, [name], 1, pool)[0]["length"] == 50
    finally:
        pool.close()
    defaults = _hopper_folder(tmp_path / "b", kwargs={"render_mode": "rgb_array"}, max_episode_steps=1000)
    assert registry.resolve(str(defaults)).env_name == "Hopper-v5"  # the registration's own values: the plain id


def test_minari_export_keeps_env_spec_kwargs(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    name = 'Hopper-v5{"reset_noise_scale": 0.2}'
    minari_data.save_minari(tmp_path / "sscp/toy-v0", "sscp/toy-v0", _transitions(obs_dim=11, act_dim=3), name)
    assert registry.resolve("sscp/toy-v0").env_name == name


MINARI_SPEC_CASES = {
    "unknown kwarg": ("env_spec", {"kwargs": {"not_a_kwarg": 1}}, "has kwargs that the environment rejects"),
    "kwargs not an object": ("eval_env_spec", {"kwargs": [0.2]}, "holds kwargs [0.2], not a JSON object"),
    "bad time limit": ("env_spec", {"max_episode_steps": "long"}, "holds max_episode_steps 'long'"),
}


@pytest.mark.parametrize("case", MINARI_SPEC_CASES)
def test_minari_env_spec_that_cannot_make_the_env_raises_one_line_error(tmp_path, case):
    key, changes, problem = MINARI_SPEC_CASES[case]
    folder = _hopper_folder(tmp_path, key, **changes)
    with pytest.raises(DataError) as error:
        registry.resolve(str(folder.parent))
    message = str(error.value)
    assert message.startswith(f"{folder / 'metadata.json'}: key '{key}' {problem}") and "\n" not in message
    assert case != "unknown kwarg" or "'not_a_kwarg'" in message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(0, 4),
    obs_rows=st.integers(0, 5),
    dtype=st.sampled_from([np.float32, np.int16, "S1"]),
    flags=hnp.arrays(np.int8, st.integers(0, 4), elements=st.integers(0, 2)),
    cut=st.none() | st.floats(0, 1),
)
def test_any_minari_dataset_loads_or_raises_data_error(steps, obs_rows, dtype, flags, cut):
    with tempfile.TemporaryDirectory() as tmp:
        episode = _episode(steps, observations=np.zeros((obs_rows, 2), dtype), terminations=flags)
        folder = _minari_folder(Path(tmp), {"episode_0": episode})
        path = folder / "main_data.hdf5"
        if cut is not None:
            path.write_bytes(path.read_bytes()[: int(cut * path.stat().st_size)])
        try:
            dataset = minari_data.load_minari(folder)
        except DataError as error:
            assert str(folder) in str(error) and "\n" not in str(error)
            return
    assert len(dataset["observations"]) == steps > 0 and dataset["terminals"][-1] == 1


# --- export round trips and training from a user's file ---


@pytest.mark.parametrize("fmt", ["d4rl", "ogbench", "minari"])
def test_export_round_trip_from_d4rl(tmp_path, monkeypatch, fmt):
    pytest.importorskip("minari") if fmt == "minari" else None
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    source = _write_h5(tmp_path / "hopper-medium-v2.hdf5", _d4rl_arrays())
    original, _ = registry.load(registry.resolve(str(source)))
    target = registry.export_command(str(source), fmt, tmp_path / "out" if fmt != "minari" else None)
    back, _ = registry.load(registry.resolve(str(target)))
    _assert_same(original, back)
    if fmt == "minari":
        spec = registry.resolve("sscp/hopper-medium-v2")
        assert spec.env_name == "Hopper-v5" and spec.ref_scores == (-20.272305, 3234.3)


@pytest.mark.parametrize("fmt", ["d4rl", "minari", "ogbench"])
def test_export_round_trip_from_ogbench(capsys, tmp_path, tiny_data_dir, fmt):
    pytest.importorskip("minari") if fmt == "minari" else None
    name = TASKS[0]
    code = cli.main(["data", "export", name, "--format", fmt, "--out", str(tmp_path), "--data-dir", str(tiny_data_dir)])
    out = capsys.readouterr().out
    assert code == 0
    target = Path(out.split(":")[0])
    original, _ = registry.load(registry.resolve(name, tiny_data_dir))
    spec = registry.resolve(str(target))
    assert spec.env_name == "pointmaze-medium-singletask-task1-v0"
    _assert_same(original, registry.load(spec)[0])


def test_base_ogbench_export_keeps_its_arrays(tmp_path, tiny_data_dir):
    target = registry.export_command(BASE_DATASET, "ogbench", tmp_path, tiny_data_dir)
    original = load_ogbench_npz(tiny_data_dir / f"{BASE_DATASET}.npz")
    _assert_same(original, load_ogbench_npz(target), ("observations", "actions", "next_observations", "terminals"))
    with pytest.raises(ConfigError, match="is the dataset being exported"):
        registry.export_command(BASE_DATASET, "ogbench", tiny_data_dir, tiny_data_dir)


def test_train_rejects_a_bad_file_in_one_line(capsys, tmp_path):
    path = _write_h5(tmp_path / "hopper-medium-v2.hdf5", {**_d4rl_arrays(), "rewards": np.zeros(3)})
    code = cli.main(["train", "--dataset", str(path), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"sscp: error: {path}: key 'rewards' has 3 rows")


@pytest.mark.slow
def test_train_from_a_d4rl_file_evaluates_in_gymnasium_v5(capsys, tiny_config, tmp_path):
    from sscp.train import Trainer

    rng = np.random.default_rng(0)
    raw = {
        "observations": rng.normal(size=(120, 11)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (120, 3)).astype(np.float32),
        "rewards": rng.normal(size=120).astype(np.float32),
        "terminals": np.zeros(120, bool),
        "timeouts": np.arange(120) % 60 == 59,
    }
    path = _write_h5(tmp_path / "hopper_medium-v2.hdf5", raw)  # D4RL's own name for hopper-medium-v2
    cfg = tiny_config(tmp_path / "run", dataset=(str(path),), steps=20, log_every=10, save_every=20, tensorboard=True)
    agent = {"batch_size": 8, "actor_hidden_dims": (8,), "critic_hidden_dims": (8,), "time_embed_dim": 8}
    trainer = Trainer(cfg, agent)
    assert trainer.runs[0].env_name == "Hopper-v5" and trainer.data.size == 118
    (result,) = trainer.train()
    assert "hopper_medium-v2.hdf5: hopper-medium-v2 evaluates in Hopper-v5" in capsys.readouterr().out
    assert result["normalized_return"] == pytest.approx(normalized_score(result["return"], (-20.272305, 3234.3)))
    assert "eval/normalized_return" in (trainer.run_dir / "eval.csv").read_text().splitlines()[0]
    assert list((trainer.run_dir / "tensorboard").glob("run0-hopper_medium-v2-seed0/events.out.tfevents.*"))


def test_d4rl_writer_names_missing_keys_and_writes_nothing(tmp_path):
    from sscp.data import d4rl

    with pytest.raises(DataError, match="without terminals"):
        d4rl.save_d4rl_hdf5(
            tmp_path / "x.hdf5", {k: np.zeros((3, 2)) for k in ("observations", "next_observations", "actions")}
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_file_no_environment_evaluates_trains_with_eval_episodes_0(capsys, tmp_path):
    """Without --eval-episodes 0 the file is refused with that remedy; with it the run trains, its table says it was
    not evaluated, and `sscp eval` says why it cannot evaluate it."""
    rng = np.random.default_rng(0)
    raw = {
        "observations": rng.normal(size=(60, 4)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (60, 2)).astype(np.float32),
        "rewards": rng.normal(size=60).astype(np.float32),
        "terminals": np.arange(60) % 30 == 29,
        "timeouts": np.zeros(60, bool),
    }
    path = _write_h5(tmp_path / "my-data.hdf5", raw)
    run = tmp_path / "run"
    args = ["train", "--dataset", str(path), "--run-dir", str(run), "--steps", "4", "--log-every", "2", "--no-progress"]
    args += ["--agent.batch-size", "4", "--agent.actor-hidden-dims", "8", "--agent.critic-hidden-dims", "8"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "cannot tell which environment evaluates it" in err and err.rstrip().endswith("--eval-episodes 0")
    assert cli.main([*args, "--eval-episodes", "0"]) == 0
    out = capsys.readouterr().out
    assert "not evaluated" in out and "(not evaluated: --eval-episodes 0 asks for none)" in out
    assert not (run / "eval.csv").exists() or (run / "eval.csv").read_text() == ""
    assert cli.main(["eval", str(run), "--workers", "0"]) == 2
    assert "cannot be evaluated: no Gymnasium environment evaluates my-data" in capsys.readouterr().err
