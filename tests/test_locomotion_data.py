"""Locomotion datasets made from a SAC run here (docs/data.md): the five datasets, the one-third rule, medium-replay as
a prefix of the training buffer, reference returns and normalised scores, resume after an interruption, truncation."""

import json
from pathlib import Path

import numpy as np
import pytest

from sscp import checkpoint, cli
from sscp.data import locomotion
from sscp.data.registry import load, make_command, resolve
from sscp.envs import normalized_score
from sscp.errors import ConfigError, DataError
from sscp.recipes import locomotion as recipe
from sscp.runlog import read_csv
from sscp.train import TrainConfig, Trainer

TINY_SAC = {"batch_size": 32, "actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16)}
TRAIN_STEPS, EVAL_EVERY, TRANSITIONS = 600, 150, 200
KINDS = locomotion.KINDS


def _make(folder: Path, **changes) -> list[Path]:
    options = dict(train_steps=TRAIN_STEPS, transitions=TRANSITIONS, eval_every=EVAL_EVERY, eval_episodes=2,
                   progress=False, num_envs=4, train_options={"log_every": 150, "eval_max_steps": 50},
                   agent_options=TINY_SAC)  # fmt: skip
    return recipe.make("hopper-medium-v5", folder, **{**options, **changes})


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("locomotion")
    _make(folder)
    return folder


def _run_dir(folder: Path) -> Path:
    return recipe.run_folder(folder, "hopper", 0, TRAIN_STEPS)


def test_select_medium_takes_the_policy_closest_to_a_third_of_the_final_one():
    assert recipe.select_medium([0.0, 100.0, 290.0, 500.0, 900.0]) == 2  # target 300
    assert recipe.select_medium([-50.0, 310.0, 290.0, 900.0]) == 1  # a tie (10 away each): the earliest
    assert recipe.select_medium([1000.0, 20.0, 30.0]) == 1  # never the final policy while others exist
    assert recipe.select_medium([5.0]) == 0
    with pytest.raises(ConfigError):
        recipe.select_medium([])


def test_names_resolve_to_v5_envs_and_missing_files_name_the_command(tmp_path):
    assert locomotion.parse("walker2d-medium-replay-v5") == ("walker2d", "medium-replay")
    assert locomotion.parse("hopper-medium-v2") is None  # D4RL's own names stay D4RL's
    spec = resolve("halfcheetah-medium-expert-v5", tmp_path)
    assert spec.env_name == "HalfCheetah-v5" and spec.ref_scores is None
    with pytest.raises(DataError, match="sscp data make halfcheetah-medium-expert-v5 --out"):
        load(spec)
    with pytest.raises(ConfigError, match="--episodes does not apply"):
        make_command("hopper-medium-v5", 3, tmp_path)
    with pytest.raises(ConfigError, match="--train-steps apply only to the locomotion"):
        make_command("pointmaze-medium-navigate-v0", None, tmp_path, locomotion_options={"train_steps": 10})


def test_data_make_hands_locomotion_names_to_the_recipe(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_make(name, out_dir, **options):
        calls.append((name, options))
        path = Path(out_dir) / "hopper-medium-v5.npz"
        np.savez(path, terminals=np.array([0.0, 1.0]))
        return [path]

    monkeypatch.setattr(recipe, "make", fake_make)  # the data layer cannot reach the recipe: the command hands it down
    assert cli.main(["data", "make", "hopper-medium-v5", "--out", str(tmp_path), "--train-steps", "10"]) == 0
    assert calls == [("hopper-medium-v5", {"seed": 0, "workers": 0, "train_steps": 10})]
    assert "made 1 datasets" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="pass make_locomotion=sscp.recipes.locomotion.make"):
        make_command("hopper-medium-v5", None, tmp_path / "other")


@pytest.mark.slow
def test_five_datasets_with_sizes_keys_and_the_medium_policy(made):
    metas = {}
    for kind in KINDS:
        spec = resolve(f"hopper-{kind}-v5", made)
        train, val = load(spec)
        assert val is None and spec.env_name == "Hopper-v5"
        assert set(train) == {"observations", "actions", "next_observations", "rewards", "masks", "terminals"}
        assert train["observations"].shape[1] == 11 and train["actions"].shape[1] == 3
        metas[kind] = json.loads(locomotion.sidecar_path(spec.train_path).read_text())
        assert metas[kind]["transitions"] == len(train["observations"])
        assert train["terminals"][-1] == 1 and set(np.unique(train["masks"])) <= {0.0, 1.0}
    for kind in ("random", "medium", "expert"):
        assert metas[kind]["transitions"] == TRANSITIONS
    assert metas["medium-expert"]["transitions"] == 2 * TRANSITIONS
    returns = [metas["medium"]["policy_eval_returns"][str(s)] for s in range(EVAL_EVERY, TRAIN_STEPS + 1, EVAL_EVERY)]
    medium_step = EVAL_EVERY * (recipe.select_medium(returns) + 1)
    assert metas["medium"]["medium_env_step"] == medium_step and metas["expert"]["expert_env_step"] == TRAIN_STEPS
    assert metas["medium-replay"]["transitions"] == medium_step


def test_medium_replay_is_a_prefix_of_the_buffer_and_medium_expert_the_concatenation(made):
    _, _, meta = checkpoint.load_latest(_run_dir(made) / "checkpoints", _template(made))
    buffer = meta["online"]["buffer"]
    assert buffer["observations"].shape[1] == TRAIN_STEPS  # the whole run's transitions, in order
    replay, _ = load(resolve("hopper-medium-replay-v5", made))
    n = len(replay["observations"])
    for key in ("observations", "actions", "next_observations", "rewards", "masks"):
        np.testing.assert_array_equal(replay[key], buffer[key][0, :n])
    medium, expert = (load(resolve(f"hopper-{k}-v5", made))[0] for k in ("medium", "expert"))
    both, _ = load(resolve("hopper-medium-expert-v5", made))
    for key in both:
        np.testing.assert_array_equal(both[key], np.concatenate([medium[key], expert[key]]))


def _template(folder: Path):
    trainer = Trainer(TrainConfig(agent="sac", env=("Hopper-v5",), online_steps=TRAIN_STEPS, progress=False), TINY_SAC)
    return trainer.agents


@pytest.mark.slow
def test_reference_returns_are_recorded_and_evaluations_get_normalised_scores(made, tmp_path):
    random, _ = load(resolve("hopper-random-v5", made))
    metas = [json.loads((made / f"hopper-{kind}-v5.json").read_text()) for kind in KINDS]
    assert len({(m["ref_min_score"], m["ref_max_score"]) for m in metas}) == 1  # one pair for the env's five
    ref = (metas[0]["ref_min_score"], metas[0]["ref_max_score"])
    assert metas[0]["mean_episode_return"] == ref[0]  # the random rollouts' finished episodes
    assert ref[0] < ref[1] and resolve("hopper-medium-v5", made).ref_scores == ref
    assert resolve(str(made / "hopper-medium-v5.npz")).ref_scores == ref  # a path finds its metadata too

    cfg = TrainConfig(agent="sac", dataset=("hopper-medium-v5",), data_dir=str(made), steps=20, log_every=20,
                      eval_episodes=1, eval_workers=0, eval_max_steps=20, run_dir=str(tmp_path / "run"),
                      progress=False)  # fmt: skip
    Trainer(cfg, TINY_SAC).train()
    row = read_csv(tmp_path / "run" / "eval.csv")[-1]
    assert row["env"] == "Hopper-v5"
    assert float(row["eval/normalized_return"]) == pytest.approx(normalized_score(float(row["eval/return"]), ref))


@pytest.mark.slow
def test_interrupted_generation_resumes_to_the_same_files(made, tmp_path, monkeypatch):
    save = checkpoint.save

    def interrupt(ckpt_dir, step, *args, **kwargs):
        path = save(ckpt_dir, step, *args, **kwargs)
        if Path(ckpt_dir).name == "policies" and step == 3 * EVAL_EVERY:
            raise KeyboardInterrupt  # after the third kept policy, before the run's own checkpoint at that step
        return path

    monkeypatch.setattr(checkpoint, "save", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _make(tmp_path)
    assert not list(tmp_path.glob("*.npz"))  # nothing at a final name yet
    saved = checkpoint.list_checkpoints(_run_dir(tmp_path) / "checkpoints")
    assert saved[-1].name == f"step_{2 * EVAL_EVERY:010d}.ckpt"
    monkeypatch.setattr(checkpoint, "save", save)

    _make(tmp_path)  # resumes the SAC run from its checkpoint at env step 300
    rows = read_csv(_run_dir(tmp_path) / "eval.csv")
    assert [int(r["env_steps"]) for r in rows] == list(range(EVAL_EVERY, TRAIN_STEPS + 1, EVAL_EVERY))
    for kind in KINDS:
        resumed, _ = load(resolve(f"hopper-{kind}-v5", tmp_path))
        reference, _ = load(resolve(f"hopper-{kind}-v5", made))
        for key in reference:
            np.testing.assert_array_equal(resumed[key], reference[key])


def test_truncated_dataset_file_is_rejected(made, tmp_path):
    path = tmp_path / "hopper-expert-v5.npz"
    data = (made / path.name).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    (tmp_path / "hopper-expert-v5.json").write_bytes((made / "hopper-expert-v5.json").read_bytes())
    with pytest.raises(DataError, match="hopper-expert-v5.npz"):
        load(resolve("hopper-expert-v5", tmp_path))
    (tmp_path / "hopper-expert-v5.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable dataset metadata"):
        resolve("hopper-expert-v5", tmp_path)


@pytest.mark.slow
def test_env_steps_per_call_reaches_the_sac_run_and_the_metadata(tmp_path):
    with pytest.raises(ConfigError, match="--env-steps-per-call must be positive"):
        _make(tmp_path, env_steps_per_call=0)
    paths = _make(tmp_path, train_steps=150, transitions=40, env_steps_per_call=50)
    run_dir = recipe.run_folder(tmp_path, "hopper", 0, 150, env_steps_per_call=50)
    assert run_dir.name.endswith("-chunk50") and run_dir != recipe.run_folder(tmp_path, "hopper", 0, 150)
    assert json.loads((run_dir / "config.json").read_text())["train"]["env_steps_per_call"] == 50
    meta = json.loads(locomotion.sidecar_path(paths[0]).read_text())
    assert meta["env_steps_per_call"] == 50 and meta["sac_run"] == str(run_dir)


def test_a_medium_policy_far_from_a_third_of_the_expert_is_flagged():
    # halfcheetah on the GPU (2026-11-27): 225 at 25k, then 5,398 at 50k, final 7,353: the pick is 3 % of the final
    returns, steps = [225.0, 5398.0, 7353.0], [25_000, 50_000, 200_000]
    medium = recipe.select_medium(returns)
    assert medium == 0
    warning = recipe.medium_warning(returns, steps, medium)
    assert "env step 25000" in warning and "0.03 x" in warning and "--eval-every" in warning
    assert recipe.medium_warning([300.0, 1000.0, 3000.0], [1, 2, 3], 1) is None  # 0.33 x: fine
    assert recipe.medium_warning([-5.0, -1.0], [1, 2], 0) is None  # a negative final return: no fraction
