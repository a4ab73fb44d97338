"""Behaviour cloning with action chunks and observation histories (sampler, receding-horizon acting, training end
to end) and the diffusion BC policy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import EVAL_MAX_STEPS, TASKS
from test_baselines import toy_batch

from sscp.agents import get_agent
from sscp.cli import main
from sscp.data.chunks import ChunkedData
from sscp.data.dataset import OfflineData, stack_tasks
from sscp.envs import EnvPool
from sscp.errors import ConfigError, DataError
from sscp.evaluate import ChunkedActor, evaluate
from sscp.train import Trainer

TINY_BC = {"hidden_dims": (32, 32), "batch_size": 32}
TINY_DIFFUSION = {"hidden_dims": (32, 32), "batch_size": 64, "time_dim": 8}


def two_episodes() -> OfflineData:
    """Returns 7 transitions in episodes of rows 0-2 and 3-6; observation and action of row i hold i."""
    rows = np.arange(7, dtype=np.float32)
    dataset = {
        "observations": np.stack([rows, -rows], 1),
        "actions": rows[:, None] / 10,
        "next_observations": np.stack([rows + 1, -rows - 1], 1),
        "terminals": np.array([0, 0, 1, 0, 0, 0, 1], np.float32),
        "rewards": rows,
        "masks": np.ones(7, np.float32),
    }
    dataset["next_observations"][2] = [99, 99]  # an episode's last next observation is not the next row's
    return stack_tasks([dataset], ["env"], ["two.npz"])


def test_chunks_pad_with_the_last_action_and_histories_with_the_first_observation():
    data = ChunkedData.wrap(two_episodes(), chunk_size=3, obs_history=2, source="two.npz")
    batch = jax.jit(lambda d, i: d.gather(i, 0))(data, jnp.array([0, 1, 2, 3, 5, 6]))
    np.testing.assert_allclose(
        batch["actions"] * 10,
        [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 5], [5, 6, 6], [6, 6, 6]],
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        batch["observations"][:, ::2],  # the first coordinate of each stacked observation, oldest first
        [[0, 0], [0, 1], [1, 2], [3, 3], [4, 5], [5, 6]],
    )
    np.testing.assert_array_equal(batch["rewards"], [0, 1, 2, 3, 5, 6])
    # vmappable over runs (tasks), as the training loop calls it
    many = jax.vmap(lambda k, t: data.sample(k, 4, t), in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), 2), 0)
    assert many["actions"].shape == (2, 4, 3) and many["observations"].shape == (2, 4, 4)


def test_chunk_size_and_history_1_sample_the_plain_batch():
    plain = two_episodes()
    idx = jnp.arange(7)
    chunked = ChunkedData.wrap(plain, 1, 1, "two.npz").gather(idx, 0)
    for key in ("observations", "actions", "rewards", "masks"):
        np.testing.assert_array_equal(chunked[key], plain.gather(idx, 0)[key])


def test_data_without_episode_ends_is_rejected():
    no_ends = two_episodes().replace(episodes=None)
    with pytest.raises(DataError, match=r"two.npz: has no episode ends .*chunk-size 4"):
        ChunkedData.wrap(no_ends, 4, 1, "two.npz")


def test_chunked_actor_executes_n_actions_per_prediction_and_stacks_history():
    seen = []

    def act(runs, obs, step):
        seen.append(obs.copy())
        return np.repeat(np.arange(4, dtype=np.float32)[None] + 10 * len(seen), len(obs), 0)  # H = 4, 1-d actions

    actor = ChunkedActor(act, action_dim=1, execute_steps=3, obs_history=2)
    actor.begin_episodes([0])
    executed = [float(actor(np.zeros(1, int), np.full((1, 1), t, np.float32), t)[0, 0]) for t in range(10)]
    assert actor.calls == math.ceil(10 / 3) == len(seen)
    assert executed == [10, 11, 12, 20, 21, 22, 30, 31, 32, 40]
    np.testing.assert_array_equal([s[0] for s in seen], [[0, 0], [2, 3], [5, 6], [8, 9]])
    actor.begin_episodes([0])  # a new episode: fresh queue, history padded with its first observation
    actor(np.zeros(1, int), np.full((1, 1), 7.0, np.float32), 0)
    assert actor.calls == 5 and list(seen[-1][0]) == [7, 7]


def test_chunked_evaluation_counts_calls_and_does_not_depend_on_slots():
    env = "pointmaze-medium-singletask-task1-v0"

    def policy(runs, obs, step):  # deterministic in the stacked observations: a chunk of 4 two-dimensional actions
        return np.tanh(np.tile(obs[:, :2] - obs[:, -4:-2], 4))

    out = []
    for slots in (1, 3):
        actor = ChunkedActor(policy, action_dim=2, execute_steps=3, obs_history=2)
        pool = EnvPool(slots, 0)
        try:
            out.append(evaluate(actor, [env], 3, pool, seed=1, max_steps=20))
        finally:
            pool.close()
        if slots == 1:
            assert actor.calls == 3 * math.ceil(20 / 3)
    assert out[0] == out[1]


def test_bad_chunking_options_are_rejected(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="execute-steps 5 must be <= --agent.chunk-size 4"):
        get_agent("bc")[1](chunk_size=4, execute_steps=5)
    with pytest.raises(ConfigError, match="obs-history"):
        get_agent("diffusion_bc")[1](obs_history=0)
    cfg = tiny_config(tmp_path / "online", agent="bc", online_steps=10)
    with pytest.raises(ConfigError, match="offline only"):
        Trainer(cfg, {**TINY_BC, "chunk_size": 2})


@pytest.mark.parametrize("name", ["bc", "flow_bc", "sscp_bc", "diffusion_bc"])
@pytest.mark.slow
def test_chunked_bc_trains_and_evaluates(name, tiny_config, tmp_path, capsys):
    tiny = {
        "bc": TINY_BC,
        "flow_bc": {**TINY_BC, "flow_steps": 2},
        "sscp_bc": {**TINY_BC, "time_embed_dim": 16},
        "diffusion_bc": {**TINY_DIFFUSION, "batch_size": 32, "diffusion_steps": 20, "sample_steps": 2},
    }[name]
    cfg = tiny_config(tmp_path / name, agent=name, dataset=TASKS[:1], steps=50)
    trainer = Trainer(cfg, {**tiny, "chunk_size": 4, "execute_steps": 2, "obs_history": 2})
    example = trainer.data.example_batch()
    assert example["actions"].shape == (1, 4 * 2) and example["observations"].shape[1] % 2 == 0
    initial = jax.tree.map(np.array, trainer.agents.params)  # a host copy: training may reuse the device buffers
    results = trainer.train()
    final = jax.tree.leaves(trainer.agents.params)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(initial), final, strict=True)), "no update"
    assert all(np.isfinite(x).all() for x in final)
    # one episode, acted in chunks of 2 env steps, and cut at the cap like any other
    assert results[0]["success"] in (0.0, 1.0) and 1 <= results[0]["length"] <= EVAL_MAX_STEPS
    if name == "bc":  # what acts one step from one observation refuses chunked runs with one line
        for command in (["eval", str(tmp_path / name), "--video"], ["export", str(tmp_path / name)]):
            assert main(command) == 2
            assert "chunk" in capsys.readouterr().err.strip().splitlines()[-1]


def test_plain_bc_uses_the_plain_data(tiny_config, tmp_path):
    trainer = Trainer(tiny_config(tmp_path / "plain", agent="bc"), TINY_BC)
    assert trainer.chunking is None and isinstance(trainer.data, OfflineData)


@pytest.mark.slow
def test_diffusion_bc_learns_and_acts_in_range():
    agent_cls, config_cls = get_agent("diffusion_bc")
    batch = toy_batch()
    config = config_cls(**TINY_DIFFUSION)
    agent = agent_cls.create(jax.random.PRNGKey(1), batch, config)
    update = jax.jit(lambda a, b: a.update(b))
    agent, first = update(agent, batch)
    for _ in range(400):
        agent, info = update(agent, batch)
    assert float(info["diffusion_loss"]) < 0.8 * float(first["diffusion_loss"]), (first, info)
    actions = jax.jit(agent.sample_actions)(batch["observations"], jax.random.PRNGKey(2))
    assert actions.shape == batch["actions"].shape and float(jnp.abs(actions).max()) <= 1.0
    fresh = agent_cls.create(jax.random.PRNGKey(1), batch, config)
    err = float(jnp.mean((actions - batch["actions"]) ** 2))
    err0 = float(jnp.mean((fresh.sample_actions(batch["observations"], jax.random.PRNGKey(2)) - batch["actions"]) ** 2))
    assert err < 0.5 * err0, (err, err0)


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_diffusion_bc_makes_sample_steps_calls_per_action(steps):
    agent_cls, config_cls = get_agent("diffusion_bc")
    batch = toy_batch(8)
    agent = agent_cls.create(jax.random.PRNGKey(4), batch, config_cls(**TINY_DIFFUSION, sample_steps=steps))
    calls = []
    real_apply = agent.actor_def.apply

    class Counting:
        action_dim = agent.actor_def.action_dim

        @staticmethod
        def apply(*args):
            calls.append(int(args[-1][0]))
            return real_apply(*args)

    agent.replace(actor_def=Counting()).sample_actions(batch["observations"], jax.random.PRNGKey(0))
    assert len(calls) == steps and calls[0] == 99 and calls == sorted(calls, reverse=True)


def test_cosine_schedule_is_diffusion_policys():
    from sscp.agents.dql import ddpm_schedule

    cumprod = np.asarray(ddpm_schedule("cosine", 100)["cumprod"])
    assert np.all(np.diff(cumprod) < 0) and cumprod[0] > 0.999 and cumprod[-1] < 1e-4
    with pytest.raises(ConfigError, match="sample-steps 11 must be <= --agent.diffusion-steps 10"):
        get_agent("diffusion_bc")[1](diffusion_steps=10, sample_steps=11)
