"""The baselines in the same framework: every one learns, acts in [−1, 1] and trains end to end; the behaviour that
matters per agent (acting calls, delayed updates, expectiles, gradient paths)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import EVAL_MAX_STEPS, TASKS

from sscp import checkpoint
from sscp.agents import AGENTS, get_agent
from sscp.errors import ConfigError
from sscp.runlog import read_csv
from sscp.train import Trainer

TINY = {
    "bc": {"hidden_dims": (32, 32), "batch_size": 64},
    "flow_bc": {"hidden_dims": (32, 32), "batch_size": 64},
    "sscp_bc": {"hidden_dims": (32, 32), "batch_size": 64, "time_embed_dim": 16},
    "fql": {"actor_hidden_dims": (32, 32), "critic_hidden_dims": (32, 32), "batch_size": 64, "flow_steps": 4},
    "rebrac": {"actor_hidden_dims": (32, 32), "critic_hidden_dims": (32, 32), "batch_size": 64},
    # temperature 1: while the values still fall (γ = 0.99, reward −1) the advantages are negative, and exp(10·A)
    # would leave the policy almost no weight within a short test
    "iql": {"actor_hidden_dims": (32, 32), "value_hidden_dims": (32, 32), "batch_size": 64, "temperature": 1.0},
    "dql": {"actor_hidden_dims": (32, 32), "critic_hidden_dims": (32, 32), "batch_size": 64, "time_dim": 8},
}


def _changed(before, after) -> bool:
    """Returns True when any leaf of two pytrees of the same structure differs."""
    return any(bool(jnp.any(a != b)) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True))


def _run(tree, index: int):
    """Returns run `index` of a pytree of vmapped runs."""
    return jax.tree.map(lambda x: x[index], tree)


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
    "name,loss",
    [
        ("bc", "bc_loss"),
        ("flow_bc", "flow_loss"),
        ("fql", "bc_flow_loss"),
        ("sscp_bc", "bc_loss"),
        ("rebrac", "bc_loss"),
        ("iql", "actor_loss"),
        ("dql", "bc_loss"),
    ],
)
@pytest.mark.slow
def test_baseline_learns_and_acts_in_range(name, loss):
    agent_cls, config_cls = get_agent(name)
    batch = toy_batch()
    initial = agent_cls.create(jax.random.PRNGKey(1), batch, config_cls(**TINY[name]))
    update = jax.jit(lambda a, b: a.update(b))
    agent, first = update(initial, batch)
    for _ in range(400):
        agent, info = update(agent, batch)
    assert float(info[loss]) < float(first[loss]) - 0.1 * abs(float(first[loss])), (first[loss], info[loss])
    actions = agent.sample_actions(batch["observations"], jax.random.PRNGKey(2))
    assert actions.shape == batch["actions"].shape and float(jnp.abs(actions).max()) <= 1.0
    # the learned policy is closer to the data than the untrained one
    fresh = agent_cls.create(jax.random.PRNGKey(1), batch, config_cls(**TINY[name]))
    assert not _changed(fresh.params, initial.params)  # the same seed makes the same networks
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


@pytest.mark.parametrize("name", ["bc", "flow_bc", "fql", "sscp_bc", "rebrac", "iql", "dql"])
@pytest.mark.slow
def test_baseline_trains_end_to_end(name, tiny_config, tmp_path):
    """The same loop, logs, evaluation and checkpoints serve every registered agent: both vmapped runs learn (their
    parameters move, stay finite, and differ by seed), the newest checkpoint is the trained state, the trained
    policies act in [-1, 1] with the data's action shape, and each evaluation result is one capped episode."""
    assert name in AGENTS
    cfg = tiny_config(tmp_path / name, agent=name, dataset=TASKS[:1], seeds=(0, 1), steps=100)
    trainer = Trainer(cfg, {**TINY[name], "batch_size": 32})
    initial = jax.tree.map(np.array, trainer.agents.params)  # a host copy: training may reuse the device buffers
    results = trainer.train()
    final = trainer.agents.params
    for run in (0, 1):
        assert _changed(_run(initial, run), _run(final, run)), f"run {run} did not move"
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(final))
    assert _changed(_run(final, 0), _run(final, 1)), "seeds 0 and 1 trained the same parameters"

    step, saved, _ = checkpoint.load_latest(tmp_path / name / "checkpoints", trainer.agents)
    assert step == 100 and not _changed(saved.params, final)

    obs = trainer.data.observations[:64]
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    actions = jax.jit(jax.vmap(lambda agent, key: agent.sample_actions(obs, key)))(trainer.agents, keys)
    assert actions.shape == (2, 64, trainer.data.actions.shape[1]) and float(jnp.abs(actions).max()) <= 1.0

    rows = read_csv(tmp_path / name / "train.csv")
    losses = [k for k in rows[0] if k.startswith("train/")]
    assert [(int(r["run"]), int(r["step"])) for r in rows] == [(0, 50), (1, 50), (0, 100), (1, 100)]
    assert losses and all(np.isfinite(float(r[k])) for r in rows for k in losses)
    assert len(results) == 2 and all(r["success"] in (0.0, 1.0) for r in results)
    assert all(1 <= r["length"] <= EVAL_MAX_STEPS for r in results)


def term_grad_norms(agent, batch: dict, key: jax.Array, terms: tuple[str, ...], jit: bool = True) -> dict:
    """Returns {term: {network: squared norm of the term's gradient}} for named terms of agent.total_loss, with
    `jit` in one compiled program (run eagerly, every operation of every gradient dispatches and compiles on its own,
    which is slower unless the same few operations repeat, as in DQL's denoising chain)."""

    def norms(agent):
        out = {}
        for term in terms:
            g = jax.grad(lambda p, term=term: agent.total_loss(batch, p, key)[1][term])(agent.params)
            out[term] = {k: sum(jnp.sum(x**2) for x in jax.tree.leaves(v)) for k, v in g.items()}
        return out

    return jax.tree.map(float, (jax.jit(norms) if jit else norms)(agent))


@pytest.mark.slow
def test_fql_gradient_paths():
    """FQL: the critic learns only from TD, the BC flow only from flow matching (the distillation target is held
    fixed), the one-step policy from distillation and Q, and no actor term reaches the critic."""
    agent_cls, config_cls = get_agent("fql")
    batch = toy_batch(64)
    agent = agent_cls.create(jax.random.PRNGKey(5), batch, config_cls(**TINY["fql"]))
    terms = ("critic_loss", "bc_flow_loss", "distill_loss", "q_loss")
    critic, bc_flow, distill, q = map(term_grad_norms(agent, batch, jax.random.PRNGKey(6), terms).get, terms)
    assert critic["critic"] > 0 and critic["flow"] == 0 and critic["onestep"] == 0  # the TD target is held fixed
    assert bc_flow["flow"] > 0 and bc_flow["onestep"] == 0 and bc_flow["critic"] == 0
    assert distill["onestep"] > 0 and distill["flow"] == 0 and distill["critic"] == 0
    assert q["onestep"] > 0 and q["critic"] == 0 and q["flow"] == 0


@pytest.mark.slow
def test_rebrac_updates_actor_and_targets_every_policy_freq_steps():
    """The critics learn on every update; the actor, its Adam state and both targets only on every policy_freq-th,
    also when runs are vmapped (as in training), where the cond turns into a select."""
    agent_cls, config_cls = get_agent("rebrac")
    batch = toy_batch(64)
    cfg = config_cls(**TINY["rebrac"], policy_freq=3)
    agents = jax.vmap(lambda k: agent_cls.create(k, batch, cfg))(jnp.stack([jax.random.PRNGKey(s) for s in (7, 8)]))
    # targets apart from the online networks, so a target step (toward the pre-step parameters) is visible at once
    agents = agents.replace(target_params=jax.tree.map(lambda x: x + 0.01, agents.target_params))
    update = jax.jit(jax.vmap(lambda a: a.update(batch)))
    for step in range(7):
        new, info = update(agents)
        actor_step = step % 3 == 0
        assert _changed(agents.params["critic"], new.params["critic"])
        assert _changed(agents.params["actor"], new.params["actor"]) == actor_step, step
        assert _changed(agents.actor_opt_state, new.actor_opt_state) == actor_step, step
        assert _changed(agents.target_params, new.target_params) == actor_step, step
        assert np.all(np.isfinite(info["actor_loss"])) and np.all(np.isfinite(info["critic_loss"]))
        agents = new
    np.testing.assert_array_equal(agents.step, [7, 7])


# Each agent's target rule, as its reference code has it: FQL's agents (fql, iql, rebrac) compute the new targets from
# the parameters from before the step's gradient update; Diffusion-QL's and CleanRL's (dql, sac) code step the
# optimiser first and move the targets toward the new parameters (docs/agents.md, "Target networks").
TARGET_RULES = {
    "fql": ("target_critic", "critic", "before"),
    "iql": ("target_critic", "critic", "before"),
    "rebrac": ("target_params", None, "before"),
    "dql": ("target_critic", "critic", "after"),
    "sac": ("target_critic", "critic", "after"),
}


@pytest.mark.parametrize("name", sorted(TARGET_RULES))
@pytest.mark.slow
def test_targets_follow_the_reference_codes_order(name):
    field, part, rule = TARGET_RULES[name]
    agent_cls, config_cls = get_agent(name)
    batch = toy_batch(64)
    tiny = TINY.get(name, {"actor_hidden_dims": (32, 32), "critic_hidden_dims": (32, 32), "batch_size": 64})
    extra = {"policy_freq": 1} if name == "rebrac" else {}
    agent = agent_cls.create(jax.random.PRNGKey(4), batch, config_cls(**tiny, tau=0.5, **extra))
    update = jax.jit(lambda a: a.update(batch)[0])
    agent = update(update(agent))  # the targets now differ from the online parameters
    new = update(agent)

    def online(a):
        return a.params if part is None else a.params[part]

    source = online(agent) if rule == "before" else online(new)
    other = online(new) if rule == "before" else online(agent)
    expected = jax.tree.map(lambda p, t: 0.5 * p + 0.5 * t, source, getattr(agent, field))
    wrong = jax.tree.map(lambda p, t: 0.5 * p + 0.5 * t, other, getattr(agent, field))
    got = jax.tree.leaves(getattr(new, field))
    assert all(np.allclose(g, e, rtol=0, atol=1e-6) for g, e in zip(got, jax.tree.leaves(expected), strict=True))
    assert not all(np.allclose(g, w, rtol=0, atol=1e-6) for g, w in zip(got, jax.tree.leaves(wrong), strict=True))


def test_rebrac_critic_penalty_needs_next_actions():
    agent_cls, config_cls = get_agent("rebrac")
    batch = toy_batch(8)
    with pytest.raises(ConfigError, match="alpha-critic"):
        agent_cls.create(jax.random.PRNGKey(0), batch, config_cls(**TINY["rebrac"], alpha_critic=0.1))
    # with next actions in the batch the penalty lowers the TD target, hence changes the critic loss
    with_next = {**batch, "next_actions": -batch["actions"]}
    losses = []
    for alpha in (0.0, 1.0):
        agent = agent_cls.create(jax.random.PRNGKey(0), with_next, config_cls(**TINY["rebrac"], alpha_critic=alpha))
        losses.append(float(agent.critic_loss(with_next, agent.params["critic"], jax.random.PRNGKey(1))[0]))
    assert losses[1] > losses[0] + 0.1, losses


def test_iql_expectile_loss_weights_positive_residuals_by_the_expectile():
    from sscp.agents.iql import expectile_loss

    np.testing.assert_allclose(expectile_loss(jnp.array([2.0, -2.0]), 0.9), [0.9 * 4, 0.1 * 4], rtol=1e-6)


@pytest.mark.parametrize("expectile", [0.5, 0.9])
@pytest.mark.slow
def test_iql_value_converges_to_the_expectile_of_q(expectile):
    """Q is 1 for half of a state's dataset actions and 0 for the other half: the τ-expectile of that is τ, so V(s)
    trained by the value loss alone must reach τ (the mean at 0.5, near the max at 0.9)."""
    agent_cls, config_cls = get_agent("iql")
    n = 64
    batch = {
        "observations": jnp.ones((n, 4)),
        "actions": jnp.where(jnp.arange(n)[:, None] % 2 == 0, 0.5, -0.5) * jnp.ones((n, 2)),
        "next_observations": jnp.ones((n, 4)),
        "rewards": jnp.zeros(n),
        "masks": jnp.ones(n),
    }
    agent = agent_cls.create(jax.random.PRNGKey(0), batch, config_cls(**TINY["iql"], expectile=expectile))

    class HalfOnes:  # target critics: Q(s, a) = 1 if a > 0 else 0, for both members
        @staticmethod
        def apply(params, obs, actions):
            q = (actions[:, 0] > 0).astype(jnp.float32)
            return jnp.stack([q, q])

    agent = agent.replace(critic_def=HalfOnes())
    opt = optax.adam(1e-2)
    params = agent.params
    state = opt.init(params["value"])

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda v: agent.value_loss(batch, {**params, "value": v})[0])(params["value"])
        updates, state = opt.update(grads, state)
        return {**params, "value": optax.apply_updates(params["value"], updates)}, state

    for _ in range(500):
        params, state = step(params, state)
    v = agent.value(params["value"], batch["observations"])
    np.testing.assert_allclose(v, expectile, atol=0.02)


@pytest.mark.parametrize("steps", [3, 5])
def test_dql_makes_diffusion_steps_calls_per_action(steps):
    agent_cls, config_cls = get_agent("dql")
    batch = toy_batch(8)
    agent = agent_cls.create(jax.random.PRNGKey(4), batch, config_cls(**TINY["dql"], diffusion_steps=steps))
    calls = []
    real_apply = agent.actor_def.apply

    class Counting:
        action_dim = agent.actor_def.action_dim

        @staticmethod
        def apply(*args):
            calls.append(1)
            return real_apply(*args)

    actions = agent.replace(actor_def=Counting()).sample_actions(batch["observations"], jax.random.PRNGKey(0))
    assert len(calls) == steps and actions.shape == batch["actions"].shape
    assert float(jnp.abs(actions).max()) <= 1.0


@pytest.mark.slow
def test_dql_gradient_paths():
    """Diffusion-QL: the Q term reaches the actor through every one of the T denoising steps (recursive
    backpropagation through the chain) and never the critics; the diffusion loss trains the actor only; the TD loss
    the critics only (its next actions come from the EMA actor)."""
    agent_cls, config_cls = get_agent("dql")
    batch = toy_batch(64)
    agent = agent_cls.create(jax.random.PRNGKey(5), batch, config_cls(**TINY["dql"]))
    key = jax.random.PRNGKey(6)
    terms = ("critic_loss", "bc_loss", "q_loss")
    critic, bc, q = map(term_grad_norms(agent, batch, key, terms, jit=False).get, terms)
    assert critic["critic"] > 0 and critic["actor"] == 0
    assert bc["actor"] > 0 and bc["critic"] == 0
    assert q["actor"] > 0 and q["critic"] == 0

    # scale the i-th network call's output by s_i: dQ-loss/ds_i ≠ 0 for every i means every step gets a gradient
    steps, real = agent.config.diffusion_steps, agent.actor_def

    def q_loss_with_scales(scales):
        index = iter(range(steps))

        class Scaled:
            action_dim = real.action_dim

            @staticmethod
            def apply(params, obs, x, t):
                return real.apply(params, obs, x, t) * scales[next(index)]

        return agent.replace(actor_def=Scaled()).q_loss(agent.params, batch, key)[0]

    grads = jax.grad(q_loss_with_scales)(jnp.ones(steps))
    assert np.all(np.abs(np.asarray(grads)) > 0), grads


@pytest.mark.slow
def test_dql_ema_actor_follows_its_schedule():
    """The EMA actor (the TD target's policy) moves only from ema_start on, and then every ema_every steps."""
    agent_cls, config_cls = get_agent("dql")
    batch = toy_batch(64)
    agent = agent_cls.create(jax.random.PRNGKey(9), batch, config_cls(**TINY["dql"], ema_start=2, ema_every=2))
    update = jax.jit(lambda a: a.update(batch))
    for step in range(6):
        new, _ = update(agent)
        assert _changed(agent.ema_actor, new.ema_actor) == (step >= 2 and step % 2 == 0), step
        agent = new
