"""The baselines in the same framework: Gaussian BC and flow BC learn, act in [−1, 1], and train end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TASKS

from sscp.agents import AGENTS, get_agent
from sscp.errors import ConfigError
from sscp.logging import read_csv
from sscp.train import Trainer

TINY = {
    "bc": {"hidden_dims": (32, 32), "batch_size": 64},
    "flow_bc": {"hidden_dims": (32, 32), "batch_size": 64},
    "sscp_bc": {"hidden_dims": (32, 32), "batch_size": 64, "time_embed_dim": 16},
    "fql": {"actor_hidden_dims": (32, 32), "critic_hidden_dims": (32, 32), "batch_size": 64, "flow_steps": 4},
}


def toy_batch(n=256):
    obs = jax.random.normal(jax.random.PRNGKey(0), (n, 4))
    return {
        "observations": obs,
        "actions": jnp.tanh(obs[:, :2]),
        "next_observations": obs + 0.1,
        "rewards": -jnp.ones(n),
        "masks": jnp.ones(n),
    }


@pytest.mark.parametrize(
    "name,loss", [("bc", "bc_loss"), ("flow_bc", "flow_loss"), ("fql", "bc_flow_loss"), ("sscp_bc", "bc_loss")]
)
def test_baseline_learns_and_acts_in_range(name, loss):
    agent_cls, config_cls = get_agent(name)
    batch = toy_batch()
    agent = agent_cls.create(jax.random.PRNGKey(1), batch, config_cls(**TINY[name]))
    update = jax.jit(lambda a, b: a.update(b))
    agent, first = update(agent, batch)
    for _ in range(400):
        agent, info = update(agent, batch)
    assert float(info[loss]) < float(first[loss]) - 0.1 * abs(float(first[loss])), (first[loss], info[loss])
    actions = agent.sample_actions(batch["observations"], jax.random.PRNGKey(2))
    assert actions.shape == batch["actions"].shape and float(jnp.abs(actions).max()) <= 1.0
    # the learned policy is closer to the data than the untrained one
    fresh = agent_cls.create(jax.random.PRNGKey(1), batch, config_cls(**TINY[name]))
    err = float(jnp.mean((actions - batch["actions"]) ** 2))
    err0 = float(jnp.mean((fresh.sample_actions(batch["observations"], jax.random.PRNGKey(2)) - batch["actions"]) ** 2))
    assert err < 0.5 * err0, (err, err0)


def test_deterministic_bc_acts_with_the_mean():
    agent_cls, config_cls = get_agent("bc")
    batch = toy_batch(16)
    agent = agent_cls.create(jax.random.PRNGKey(3), batch, config_cls(**TINY["bc"]))
    a1 = agent.sample_actions(batch["observations"], jax.random.PRNGKey(0))
    np.testing.assert_array_equal(a1, agent.sample_actions(batch["observations"], jax.random.PRNGKey(1)))
    stochastic = agent.replace(config=config_cls(**TINY["bc"], deterministic=False))
    a2 = stochastic.sample_actions(batch["observations"], jax.random.PRNGKey(1))
    assert float(jnp.abs(a2 - a1).max()) > 1e-3


def test_flow_bc_makes_flow_steps_calls_per_action():
    agent_cls, config_cls = get_agent("flow_bc")
    batch = toy_batch(8)
    agent = agent_cls.create(jax.random.PRNGKey(4), batch, config_cls(**TINY["flow_bc"], flow_steps=3))
    calls = []
    real_apply = agent.field_def.apply

    class Counting:
        action_dim = agent.field_def.action_dim

        @staticmethod
        def apply(*args):
            calls.append(1)
            return real_apply(*args)

    agent.replace(field_def=Counting()).sample_actions(batch["observations"], jax.random.PRNGKey(0))
    assert len(calls) == 3


@pytest.mark.parametrize("name,field", [("bc", "batch_size"), ("flow_bc", "flow_steps")])
def test_bad_values_are_rejected(name, field):
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        get_agent(name)[1](**{field: 0})


@pytest.mark.parametrize("name", ["bc", "flow_bc", "fql", "sscp_bc"])
def test_baseline_trains_end_to_end(name, tiny_config, tmp_path):
    """The same loop, logs, evaluation and checkpoints serve every registered agent."""
    assert name in AGENTS
    cfg = tiny_config(tmp_path / name, agent=name, dataset=TASKS[:1], seeds=(0, 1), steps=100)
    trainer = Trainer(cfg, {**TINY[name], "batch_size": 32})
    results = trainer.train()
    assert len(results) == 2 and all(0.0 <= r["success"] <= 1.0 for r in results)
    rows = read_csv(tmp_path / name / "train.csv")
    assert len(rows) == 4 and all(np.isfinite(float(v)) for r in rows for k, v in r.items() if k.startswith("train/"))
    assert (tmp_path / name / "checkpoints").is_dir()


def test_fql_gradient_paths():
    """FQL: the critic learns only from TD, the BC flow only from flow matching (the distillation target is held
    fixed), the one-step policy from distillation and Q, and no actor term reaches the critic."""
    agent_cls, config_cls = get_agent("fql")
    batch = toy_batch(64)
    agent = agent_cls.create(jax.random.PRNGKey(5), batch, config_cls(**TINY["fql"]))
    key = jax.random.PRNGKey(6)

    def norms(term):
        g = jax.grad(lambda p: agent.total_loss(batch, p, key)[1][term])(agent.params)
        return {k: float(sum(jnp.sum(x**2) for x in jax.tree.leaves(v))) for k, v in g.items()}

    critic, bc_flow = norms("critic_loss"), norms("bc_flow_loss")
    distill, q = norms("distill_loss"), norms("q_loss")
    assert critic["critic"] > 0 and critic["flow"] == 0 and critic["onestep"] == 0  # the TD target is held fixed
    assert bc_flow["flow"] > 0 and bc_flow["onestep"] == 0 and bc_flow["critic"] == 0
    assert distill["onestep"] > 0 and distill["flow"] == 0 and distill["critic"] == 0
    assert q["onestep"] > 0 and q["critic"] == 0 and q["flow"] == 0
