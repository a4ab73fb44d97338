"""Datasets: generation with OGBench's oracles, loading and validation of damaged files, atomic writes, relabelling."""

import errno
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import ogbench
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sscp.data import generate as generate_module
from sscp.data.formats import load_ogbench_npz, save_npz_atomic
from sscp.data.generate import generate
from sscp.data.registry import DATASETS, load, make_command, resolve
from sscp.errors import ConfigError, DataError

EPISODES = 2
STEPS = 50  # Stored steps per episode, so 49 transitions each.
NAMES = ("cube-single-play-v0", "pointmaze-medium-navigate-v0")


def _make(name: str, folder: Path, **options) -> tuple[Path, Path]:
    options = {"episodes": EPISODES, "workers": 1, "progress": False, "max_episode_steps": STEPS} | options
    return generate(name, folder, **options)


def _read(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for name in NAMES:
        _make(name, folder)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_generated_files_have_ogbench_layout(data_folder, name):
    raw = _read(data_folder / f"{name}.npz")
    assert {"observations", "actions", "terminals", "qpos", "qvel"} <= set(raw)
    expected_terminals = np.tile(np.arange(STEPS) == STEPS - 1, EPISODES)
    np.testing.assert_array_equal(raw["terminals"], expected_terminals)
    assert raw["observations"].dtype == raw["actions"].dtype == np.float32

    train, val = load(resolve(name, data_folder))
    transitions = EPISODES * (STEPS - 1)
    assert set(train) == {"observations", "actions", "next_observations", "terminals"}
    assert train["observations"].shape == (transitions, raw["observations"].shape[1])
    assert train["actions"].shape == (transitions, raw["actions"].shape[1])
    assert all(values.dtype == np.float32 for values in train.values())
    assert np.all(np.abs(train["actions"]) <= 1.0)
    np.testing.assert_array_equal(np.flatnonzero(train["terminals"]), [STEPS - 2, transitions - 1])
    # Within an episode the next observation is the following row's observation.
    np.testing.assert_array_equal(train["next_observations"][: STEPS - 2], train["observations"][1 : STEPS - 1])
    assert val is not None and val["observations"].shape[0] == STEPS - 1  # max(1, round(0.1 * 2)) episodes.


@pytest.mark.parametrize("name", NAMES)
def test_loader_matches_ogbench_load_dataset(data_folder, name):
    path = data_folder / f"{name}.npz"
    ours = load_ogbench_npz(path, add_info=True)
    theirs = ogbench.load_dataset(str(path), add_info=True)
    assert set(ours) == set(theirs)
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow
def test_same_seed_gives_identical_arrays(data_folder, tmp_path, name):
    _make(name, tmp_path / "again")
    _make(name, tmp_path / "other", seed=1)
    for suffix in (".npz", "-val.npz"):
        reference = _read(data_folder / f"{name}{suffix}")
        again = _read(tmp_path / "again" / f"{name}{suffix}")
        assert all(np.array_equal(reference[key], again[key]) for key in reference)
    other = _read(tmp_path / "other" / f"{name}.npz")
    assert not np.array_equal(_read(data_folder / f"{name}.npz")["actions"], other["actions"])


def test_worker_count_does_not_change_the_data(tmp_path):
    name = "pointmaze-teleport-navigate-v0"
    _make(name, tmp_path / "one", episodes=3, workers=1)
    _make(name, tmp_path / "two", episodes=3, workers=2)
    one, two = _read(tmp_path / "one" / f"{name}.npz"), _read(tmp_path / "two" / f"{name}.npz")
    assert all(np.array_equal(one[key], two[key]) for key in one)


@pytest.mark.parametrize(
    ("name", "env_name"),
    [
        ("cube-single-play-singletask-task1-v0", "cube-single-singletask-task1-v0"),
        ("cube-single-play-singletask-v0", "cube-single-singletask-v0"),
        ("pointmaze-medium-navigate-singletask-task3-v0", "pointmaze-medium-singletask-task3-v0"),
    ],
)
def test_single_task_names_relabel_rewards_and_masks(data_folder, name, env_name):
    spec = resolve(name, data_folder)
    assert spec.single_task and spec.env_name == env_name
    assert spec.train_path == data_folder / f"{spec.dataset_name}.npz"
    train, val = load(spec)
    for dataset in (train, val):
        n = len(dataset["observations"])
        assert dataset["rewards"].shape == dataset["masks"].shape == (n,)
        assert dataset["rewards"].dtype == dataset["masks"].dtype == np.float32
        assert np.all(dataset["rewards"] <= 0)
        assert set(np.unique(dataset["masks"])) <= {0.0, 1.0}
        assert not {"qpos", "qvel", "button_states"} & set(dataset)


def test_goal_conditioned_data_has_no_rewards(data_folder):
    spec = resolve("cube-single-play-v0", data_folder)
    assert not spec.single_task and spec.env_name == "cube-single-v0"
    train, _ = load(spec)
    assert "rewards" not in train and "masks" not in train


def test_path_resolves_with_optional_val_split(data_folder, tmp_path):
    lone = tmp_path / "cube-single-play-v0.npz"
    lone.write_bytes((data_folder / "cube-single-play-v0.npz").read_bytes())
    spec = resolve(str(lone))
    assert spec.train_path == lone and spec.env_name == "cube-single-v0" and not spec.single_task
    train, val = load(spec)
    assert val is None and len(train["observations"]) == EPISODES * (STEPS - 1)


def test_missing_file_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(DataError, match="sscp data make pointmaze-medium-stitch-v0") as error:
        load(resolve("pointmaze-medium-stitch-v0", tmp_path))
    assert str(tmp_path / "pointmaze-medium-stitch-v0.npz") in str(error.value)


def test_missing_file_is_made_on_request(tmp_path):
    train, val = load(resolve("pointmaze-medium-stitch-v0", tmp_path), make_if_missing=True, episodes=2)
    assert len(train["observations"]) == 2 * 200  # Stitch episodes store 201 steps.
    assert val is not None and (tmp_path / "pointmaze-medium-stitch-v0-val.npz").is_file()


def test_make_command_reports_files(tmp_path, capsys):
    train_path, val_path = make_command("pointmaze-large-stitch-singletask-task2-v0", 3, tmp_path, 1, 0)
    assert train_path == tmp_path / "pointmaze-large-stitch-v0.npz" and val_path.is_file()
    output = capsys.readouterr().out
    assert f"{train_path}: 3 episodes, 600 transitions" in output
    assert f"{val_path}: 1 episodes, 200 transitions" in output


def test_unknown_names_list_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="cube-single-play-v0"):
        generate("cube-sextuple-play-v0", tmp_path)
    with pytest.raises(ConfigError, match=r"did you mean cube-single-play-v0, .*`sscp data list` prints every name"):
        resolve("cube-single-play-singletask-task9-v0")
    assert {"cube-double-play-v0", "scene-noisy-v0", "puzzle-4x4-play-v0", "pointmaze-giant-stitch-v0"} <= set(DATASETS)


def test_interrupted_generation_leaves_no_files(tmp_path, monkeypatch):
    collect = generate_module.EpisodeCollector.episode
    calls = []

    def interrupted(self, *task):
        calls.append(task)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return collect(self, *task)

    monkeypatch.setattr(generate_module.EpisodeCollector, "episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _make("pointmaze-medium-navigate-v0", tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- Validation: each damaged file raises a one-line DataError that names the file and the key. ---


def _valid_arrays(steps: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "observations": rng.normal(size=(steps, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32),
        "terminals": np.arange(steps) % 3 == 2,
        "qpos": rng.normal(size=(steps, 4)).astype(np.float32),
    }


def _with(**changes) -> dict[str, np.ndarray]:
    arrays = _valid_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _write_truncated_member(path: Path) -> None:
    """An intact zip whose 'actions' member is a cut-off .npy, so the damage only shows when that array is read."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, values in _valid_arrays().items():
            data = _npy_bytes(values)
            archive.writestr(f"{key}.npy", data[: len(data) - 20] if key == "actions" else data)


def _write_truncated_archive(path: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_valid_arrays(200))
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


actions_with_nan = _valid_arrays()["actions"]
actions_with_nan[[2, 4], 1] = np.nan
observations_with_inf = _valid_arrays()["observations"]
observations_with_inf[3, 0] = np.inf

CASES = {
    "truncated archive": (_write_truncated_archive, None, "not a readable .npz"),
    "truncated member": (_write_truncated_member, "actions", "truncated or corrupt"),
    "not a zip": (lambda path: path.write_text("observations,actions\n1,2\n"), None, "not a readable .npz"),
    "empty file": (lambda path: path.write_bytes(b""), None, "not a readable .npz"),
    "single npy": (lambda path: path.write_bytes(_npy_bytes(np.zeros(3))), None, "single .npy"),
    "missing key": (_with(terminals=None), "terminals", "missing"),
    "nan": (_with(actions=actions_with_nan), "actions", "2 NaN values (first at row 2)"),
    "inf": (_with(observations=observations_with_inf), "observations", "1 infinite"),
    "out of range": (_with(actions=np.full((6, 2), 1.5, np.float32)), "actions", "outside [-1, 1]"),
    "int dtype": (_with(observations=np.ones((6, 3), np.int64)), "observations", "dtype int64"),
    "string dtype": (_with(actions=np.full((6, 2), "a")), "actions", "dtype <U1"),
    "object dtype": (_with(observations=np.array([[None]] * 6, dtype=object)), "observations", "pickled"),
    "wrong ndim": (_with(observations=np.zeros(6, np.float32)), "observations", "shape (6,)"),
    "mismatched lengths": (_with(qpos=np.zeros((5, 4), np.float32)), "qpos", "5 rows but 'observations' has 6"),
    "empty dataset": (
        {
            "observations": np.zeros((0, 3), np.float32),
            "actions": np.zeros((0, 2), np.float32),
            "terminals": np.zeros(0, bool),
        },
        "observations",
        "no rows",
    ),
    "last terminal not 1": (_with(terminals=np.arange(6) == 2), "terminals", "does not end with 1"),
    "terminal not 0 or 1": (_with(terminals=np.array([0, 0, 2, 0, 0, 1])), "terminals", "other than 0 and 1"),
    "no transition": (_with(terminals=np.ones(6, bool)), "terminals", "no episode has a transition"),
}


@pytest.mark.parametrize("case", CASES)
def test_damaged_file_raises_one_line_data_error(tmp_path, case):
    content, key, problem = CASES[case]
    path = tmp_path / "cube-single-play-v0.npz"
    if callable(content):
        content(path)
    else:
        np.savez(path, **content)  # np.savez pickles object arrays, as an untrusted file might.
    with pytest.raises(DataError) as error:
        load_ogbench_npz(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert problem in message
    assert key is None or f"key '{key}'" in message
    assert "sscp data make cube-single-play-v0" in message


def test_missing_file_and_directory_raise_data_error(tmp_path):
    for path in (tmp_path / "absent.npz", tmp_path):
        with pytest.raises(DataError, match="does not exist|is a directory"):
            load_ogbench_npz(path)


def test_loader_accepts_other_float_widths_and_tiny_overshoot(tmp_path):
    path = tmp_path / "ok.npz"
    actions = _valid_arrays()["actions"].astype(np.float64)
    actions[0, 0] = 1.0 + 5e-7
    np.savez(path, **_with(observations=_valid_arrays()["observations"].astype(np.float16), actions=actions))
    dataset = load_ogbench_npz(path)
    assert dataset["observations"].dtype == dataset["actions"].dtype == np.float32
    assert dataset["actions"].max() <= 1.0
    assert len(dataset["observations"]) == 4  # Two episodes of three stored steps.


_DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.bool_, np.complex64, "<U2"])


@st.composite
def _npz_contents(draw) -> tuple[dict[str, np.ndarray], tuple | None]:
    steps = draw(st.integers(0, 6))
    arrays = {}
    for key, width in (
        ("observations", draw(st.integers(0, 3))),
        ("actions", draw(st.integers(0, 2))),
        ("terminals", None),
        ("qpos", draw(st.integers(1, 2))),
    ):
        if draw(st.integers(0, 19)) == 0:
            continue  # Occasionally leave a key out.
        rows = steps if draw(st.integers(0, 9)) else draw(st.integers(0, 6))
        shape = (rows,) if width is None else draw(st.sampled_from([(rows, width), (rows,), (rows, width, 1)]))
        dtype = draw(st.sampled_from([np.int64, np.bool_, np.float32])) if key == "terminals" else draw(_DTYPES)
        elements = st.integers(0, 2) if key == "terminals" and dtype == np.int64 else None
        if elements is None and np.dtype(dtype).kind == "f":
            elements = st.floats(-2, 2, width=np.dtype(dtype).itemsize * 8) | st.sampled_from([np.nan, np.inf])
        arrays[key] = draw(hnp.arrays(dtype, shape, elements=elements))
    corruption = draw(
        st.none() | st.tuples(st.sampled_from(["truncate", "flip"]), st.floats(0, 1), st.integers(1, 255))
    )
    return arrays, corruption


@settings(max_examples=50, deadline=None)
@given(_npz_contents())
def test_any_file_loads_or_raises_data_error(contents):
    arrays, corruption = contents
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.npz"
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        data = bytearray(buffer.getvalue())
        if corruption is not None:
            how, where, value = corruption
            position = min(int(where * len(data)), len(data) - 1)
            if how == "truncate":
                data = data[:position]
            else:
                data[position] ^= value
        path.write_bytes(bytes(data))
        try:
            dataset = load_ogbench_npz(path)
        except DataError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            return
    n = len(dataset["observations"])
    assert all(len(values) == n for values in dataset.values()) and n > 0
    assert all(values.dtype == np.float32 for values in dataset.values())
    assert np.all(np.abs(dataset["actions"]) <= 1.0) and dataset["terminals"][-1] == 1


# --- Atomic writes ---


def _failing_savez(file, **arrays):
    file.write(b"PK\x03\x04 partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_write_keeps_the_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    save_npz_atomic(path, _valid_arrays())
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez_compressed", _failing_savez)
    with pytest.raises(DataError, match="No space left on device") as error:
        save_npz_atomic(path, {"observations": np.zeros((2, 2))})
    assert str(path) in str(error.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["data.npz"]


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez_compressed", _failing_savez)
    with pytest.raises(DataError):
        save_npz_atomic(tmp_path / "data.npz", _valid_arrays())
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(file, **arrays):
        file.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_npz_atomic(tmp_path / "data.npz", _valid_arrays())
    assert os.listdir(tmp_path) == []


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    from sscp.atomic import replacing_folder

    store = tmp_path / "store.zarr"
    with replacing_folder(store) as tmp:
        tmp.mkdir()
        (tmp / "part").write_text("first")
    assert (store / "part").read_text() == "first" and os.listdir(tmp_path) == ["store.zarr"]
    with pytest.raises(KeyboardInterrupt), replacing_folder(store) as tmp:
        tmp.mkdir()
        (tmp / "part").write_text("half")
        raise KeyboardInterrupt
    assert (store / "part").read_text() == "first" and os.listdir(tmp_path) == ["store.zarr"]
    with replacing_folder(store) as tmp:
        tmp.mkdir()
        (tmp / "other").write_text("second")
    assert os.listdir(store) == ["other"] and os.listdir(tmp_path) == ["store.zarr"]


def test_saved_file_round_trips(tmp_path):
    path = tmp_path / "nested" / "data.npz"
    save_npz_atomic(path, _valid_arrays())
    assert os.listdir(path.parent) == ["data.npz"]
    dataset = load_ogbench_npz(path, add_info=True)
    np.testing.assert_array_equal(dataset["qpos"], _valid_arrays()["qpos"][[0, 1, 3, 4]])


def _episodes_dataset(rng: np.random.Generator, lengths: list[int], obs_dim: int = 3) -> dict:
    n = sum(lengths)
    terminals = np.zeros(n, np.float32)
    terminals[np.cumsum(lengths) - 1] = 1.0
    obs = rng.standard_normal((n, obs_dim)).astype(np.float32)
    return {
        "observations": obs,
        "next_observations": obs + 1,
        "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        "rewards": rng.standard_normal(n).astype(np.float32),
        "masks": np.ones(n, np.float32),
        "terminals": terminals,
    }


@pytest.mark.slow
def test_different_datasets_train_together_each_task_on_its_own_rows():
    """Datasets that are not single-task variants of one dataset (e.g. the demonstration files of one suite) are
    concatenated: task t samples only its own rows, with its own rewards, and action chunks stay in its episodes."""
    import jax

    from sscp.data.chunks import ChunkedData
    from sscp.data.dataset import stack_tasks

    rng = np.random.default_rng(0)
    first, second = _episodes_dataset(rng, [5, 7]), _episodes_dataset(rng, [4, 4, 3])
    data = stack_tasks([first, second], ["a", "b"], ["first.npz", "second.npz"])
    assert data.size == 23 and data.smallest_task == 11
    for task, source in enumerate((first, second)):
        batch = data.sample(jax.random.PRNGKey(task), 500, task)
        rows = {tuple(o) for o in np.asarray(batch["observations"])}
        assert rows == {tuple(o) for o in source["observations"]}  # every row of its own, none of the other's
        by_obs = {tuple(o): r for o, r in zip(source["observations"], source["rewards"], strict=True)}
        assert np.allclose(np.asarray(batch["rewards"]), [by_obs[tuple(o)] for o in np.asarray(batch["observations"])])
    chunked = ChunkedData.wrap(data, chunk_size=6, obs_history=1, source="test")
    batch = chunked.sample(jax.random.PRNGKey(3), 400, 1)
    chunks = np.asarray(batch["actions"]).reshape(400, 6, 2)
    second_actions = [tuple(a) for a in second["actions"]]
    for chunk in chunks:  # a chunk's actions are consecutive rows of one episode of the second dataset
        rows = [second_actions.index(tuple(a)) for a in chunk]
        assert all(b - a in (0, 1) for a, b in zip(rows, rows[1:], strict=False))
        assert len({np.searchsorted([3, 7, 10], r) for r in rows}) == 1  # episode ends at rows 3, 7, 10


def test_datasets_of_different_sizes_cannot_train_together():
    from sscp.data.dataset import stack_tasks

    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match=r"b.npz: its observations have shape \(4,\) per row, those of a.npz \(3,\)"):
        stack_tasks(
            [_episodes_dataset(rng, [5]), _episodes_dataset(rng, [5], obs_dim=4)], ["a", "b"], ["a.npz", "b.npz"]
        )
