"""Task demonstrations from the OGBench cube oracle: successful episodes only, one file per evaluation task, loaded
by name with the single-task env's rewards, and trainable by the BC agents."""

import numpy as np
import pytest

from sscp.data import registry
from sscp.data.demos import make
from sscp.errors import ConfigError, DataError
from sscp.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demos")
    make("cube-single-task1-demos-v0", folder, episodes=2, seed=0)
    return folder


def test_demos_are_successful_task_episodes(demo_dir):
    spec = registry.resolve("cube-single-task1-demos-v0", demo_dir)
    assert spec.env_name == "cube-single-singletask-task1-v0" and not spec.single_task
    train, val = registry.load(spec)
    assert val is None and int(train["terminals"].sum()) == 2
    ends = np.flatnonzero(train["terminals"])
    # every episode ends in success: the env's reward 0 and mask 0 at its last step only, -1 and 1 before
    assert np.all(train["rewards"][ends] == 0) and np.all(train["masks"][ends] == 0)
    assert np.all(train["rewards"][train["terminals"] == 0] == -1) and np.all(train["masks"][train["terminals"] == 0])
    assert np.abs(train["actions"]).max() <= 1.0


def test_same_seed_same_demos(demo_dir, tmp_path):
    make("cube-single-task1-demos-v0", tmp_path, episodes=2, seed=0)
    with (
        np.load(demo_dir / "cube-single-task1-demos-v0.npz") as a,
        np.load(tmp_path / "cube-single-task1-demos-v0.npz") as b,
    ):
        np.testing.assert_array_equal(a["observations"], b["observations"])


def test_unknown_and_missing_demos_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown demonstration dataset 'cube-double-demos-v0'"):
        make("cube-double-demos-v0", tmp_path)
    with pytest.raises(DataError, match="make it with `sscp data make cube-single-task2-demos-v0 --out"):
        registry.load(registry.resolve("cube-single-task2-demos-v0", tmp_path))


def test_chunked_bc_trains_on_demos_and_evaluates_in_the_task_env(demo_dir, tmp_path):
    cfg = TrainConfig(
        agent="bc", dataset=("cube-single-task1-demos-v0",), steps=20, data_dir=str(demo_dir), log_every=10,
        eval_episodes=1, eval_workers=0, eval_max_steps=10, progress=False, run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    trainer = Trainer(cfg, {"hidden_dims": (16,), "batch_size": 16, "chunk_size": 4, "execute_steps": 2})
    results = trainer.train()
    assert trainer.runs[0].env_name == "cube-single-singletask-task1-v0" and results[0]["length"] == 10
