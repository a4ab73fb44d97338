"""The SSCP agent's behaviour that matters: the completion identity, gradient flow, EMA rates, acting with the EMA
actor, and that its losses go down."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sscp import flow
from sscp.agents.sscp import SSCPAgent, SSCPConfig
from sscp.errors import ConfigError

TINY = SSCPConfig(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32), time_embed_dim=16, batch_size=64)


def make_batch(key, n=64, obs_dim=6, act_dim=3):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (n, obs_dim))
    return {
        "observations": obs,
        "actions": jnp.tanh(obs[:, :act_dim] + 0.1 * jax.random.normal(k2, (n, act_dim))),
        "next_observations": obs + 0.1 * jax.random.normal(k3, (n, obs_dim)),
        "rewards": -jnp.ones(n),
        "masks": jnp.ones(n),
    }


@pytest.fixture(scope="module")
def agent_and_batch():
    batch = make_batch(jax.random.PRNGKey(0))
    return SSCPAgent.create(jax.random.PRNGKey(1), batch, TINY), batch


def grad_norms(fn, params):
    g = jax.grad(fn)(params)
    return {k: float(sum(jnp.sum(x**2) for x in jax.tree.leaves(v))) for k, v in g.items()}


def test_completion_identity_on_the_straight_path():
    """(a − x_τ)/(1 − τ) = a − z, so a completion vector equal to a − z lands exactly on the data action."""
    key = jax.random.PRNGKey(3)
    a = jax.random.uniform(key, (128, 4), minval=-1, maxval=1)
    z, tau, x_tau = flow.sample_path(jax.random.PRNGKey(4), a)
    np.testing.assert_allclose((a - x_tau) / (1 - tau[:, None]), a - z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(flow.complete(x_tau, tau, a - z), a, atol=1e-5)
    assert float(flow.completion_loss(flow.complete(x_tau, tau, a - z), a)) < 1e-10
    assert float(flow.flow_loss(a - z, a, z)) == 0.0


def test_time_sampling_is_u_squared():
    """τ = u² has mean 1/3 and P(τ < 0.25) = 0.5: biased toward the noise end."""
    _, tau, _ = flow.sample_path(jax.random.PRNGKey(0), jnp.zeros((200_000, 1)))
    assert abs(float(tau.mean()) - 1 / 3) < 0.005
    assert abs(float((tau < 0.25).mean()) - 0.5) < 0.005


@pytest.mark.slow
def test_one_network_call_equals_two(agent_and_batch):
    agent, batch = agent_and_batch
    field = agent.field(agent.params["actor"])
    z, tau, x_tau = flow.sample_path(jax.random.PRNGKey(5), batch["actions"])
    v, c = flow.flow_and_completion(field, batch["observations"], x_tau, tau)
    np.testing.assert_allclose(v, field(batch["observations"], x_tau, tau, jnp.zeros_like(tau)), atol=1e-5)
    np.testing.assert_allclose(c, field(batch["observations"], x_tau, tau, 1 - tau), atol=1e-5)


def loss_term(agent, batch, key, name):
    """Returns params -> one named loss term of the agent's total loss."""
    return lambda p: agent.total_loss(batch, p, key)[1][name]


@pytest.mark.slow
def test_gradient_flow(agent_and_batch):
    """Critic loss trains only the critic; actor loss (incl. the Q term) trains only the actor."""
    agent, batch = agent_and_batch
    key = jax.random.PRNGKey(6)
    critic = grad_norms(loss_term(agent, batch, key, "critic_loss"), agent.params)
    actor = grad_norms(loss_term(agent, batch, key, "actor_loss"), agent.params)
    assert critic["critic"] > 0 and critic["actor"] == 0.0
    assert actor["actor"] > 0 and actor["critic"] == 0.0
    # The Q term alone still reaches the actor (through the completed action), never the critic.
    q_grads = grad_norms(loss_term(agent, batch, key, "q_loss"), agent.params)
    assert q_grads["actor"] > 0 and q_grads["critic"] == 0.0


def test_normalised_q_loss_is_scale_free(agent_and_batch):
    """λ = 1/mean|Q| makes the Q term −mean(Q)/mean|Q|: in [−1, 1], and unchanged when Q is scaled."""
    agent, batch = agent_and_batch
    key = jax.random.PRNGKey(7)
    q_term = loss_term(agent, batch, key, "q_loss")
    q_loss = float(q_term(agent.params))
    assert -1.0 - 1e-5 <= q_loss <= 1.0 + 1e-5
    head = agent.params["critic"]["params"]["members"]["Dense_2"]
    members = agent.params["critic"]["params"]["members"]
    scaled_head = {"kernel": 50.0 * head["kernel"], "bias": 50.0 * head["bias"]}
    scaled = {**agent.params, "critic": {"params": {"members": {**members, "Dense_2": scaled_head}}}}
    np.testing.assert_allclose(float(q_term(scaled)), q_loss, rtol=1e-4)


def _close(a, b, atol):
    return all(
        np.allclose(x, y, rtol=0, atol=atol) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("rates", [(0.0005, 0.005), (0.25, 0.5)])
@pytest.mark.slow
def test_targets_move_toward_the_parameters_from_before_the_step(rates):
    """θ̄ ← τ·θ_before + (1 − τ)·θ̄, computed in the same step as the gradient step (the authors' order); with large
    rates the test also tells it from the θ_after rule."""
    actor_ema, critic_tau = rates
    batch = make_batch(jax.random.PRNGKey(0))
    config = dataclasses.replace(TINY, actor_ema=actor_ema, critic_tau=critic_tau)
    agent = SSCPAgent.create(jax.random.PRNGKey(1), batch, config)
    update = jax.jit(lambda a: a.update(batch)[0])
    agent = update(update(agent))  # targets and online parameters now differ
    new = update(agent)
    for part, rate in (("actor", actor_ema), ("critic", critic_tau)):
        before = jax.tree.map(lambda p, t, r=rate: r * p + (1 - r) * t, agent.params[part], agent.target_params[part])
        after = jax.tree.map(lambda p, t, r=rate: r * p + (1 - r) * t, new.params[part], agent.target_params[part])
        assert _close(new.target_params[part], before, atol=1e-7), part
        if rate >= 0.25:
            assert not _close(new.target_params[part], after, atol=1e-6), part
    assert not _close(new.params["actor"], agent.params["actor"], atol=0.0)


def test_critic_sees_the_clipped_dataset_actions():
    """The critic's Q(s, a) takes the dataset actions clipped to ±(1 − eps), like the flow losses (the authors clip
    once at load time): the TD loss recomputed here from the parameters with clipped actions matches, and differs
    from the unclipped value. A large eps makes the two clearly different."""
    batch = make_batch(jax.random.PRNGKey(0))
    batch["actions"] = jnp.sign(batch["actions"])  # every action at ±1
    config = dataclasses.replace(TINY, action_clip_eps=0.2)
    agent = SSCPAgent.create(jax.random.PRNGKey(1), batch, config)
    agent = agent.replace(target_params=jax.tree.map(lambda x: x + 0.01, agent.target_params))
    key = jax.random.PRNGKey(2)
    z_next = agent._draws(batch, key)[0]
    next_actions = flow.one_step_sample(agent.field(agent.target_params["actor"]), batch["next_observations"], z_next)
    next_q = agent.critic_def.apply(agent.target_params["critic"], batch["next_observations"], next_actions).min(0)
    y = batch["rewards"] + config.discount * batch["masks"] * next_q

    def td(actions):
        q = agent.critic_def.apply(agent.params["critic"], batch["observations"], actions)
        return float(jnp.mean((q - y) ** 2))

    loss = float(loss_term(agent, batch, key, "critic_loss")(agent.params))
    assert loss == pytest.approx(td(jnp.clip(batch["actions"], -0.8, 0.8)), rel=1e-5)
    assert abs(loss - td(batch["actions"])) > 1e-3


def test_acting_uses_the_ema_actor(agent_and_batch):
    agent, batch = agent_and_batch
    obs, key = batch["observations"][:8], jax.random.PRNGKey(8)
    base = agent.sample_actions(obs, key)
    noisy = jax.tree.map(lambda x: x + 1.0, agent.params["actor"])
    np.testing.assert_array_equal(agent.replace(params={**agent.params, "actor": noisy}).sample_actions(obs, key), base)
    moved = agent.replace(target_params={**agent.target_params, "actor": noisy}).sample_actions(obs, key)
    assert float(jnp.abs(moved - base).max()) > 1e-3
    assert float(jnp.abs(base).max()) <= 1.0


@pytest.mark.slow
def test_losses_go_down():
    """On a small deterministic-ish dataset, flow, completion and critic losses fall over 300 updates."""
    batch = make_batch(jax.random.PRNGKey(10), n=256)
    agent = SSCPAgent.create(jax.random.PRNGKey(11), batch, TINY)
    update = jax.jit(lambda a, b: a.update(b))
    first = None
    for _ in range(300):
        agent, info = update(agent, batch)
        first = first or {k: float(v) for k, v in info.items()}
    last = {k: float(v) for k, v in info.items()}
    for k in ("flow_loss", "completion_loss", "critic_loss", "one_step_mse"):
        assert last[k] < 0.7 * first[k], (k, first[k], last[k])


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_parameters_and_learns():
    """The bfloat16 speed option computes activations in bf16 but keeps parameters, losses and Adam in float32."""
    batch = make_batch(jax.random.PRNGKey(12), n=256)
    cfg = SSCPConfig(**{**TINY.__dict__, "compute_dtype": "bfloat16", "log_one_step_mse": False})
    agent = SSCPAgent.create(jax.random.PRNGKey(13), batch, cfg)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(agent.params))
    update = jax.jit(lambda a, b: a.update(b))
    agent, first = update(agent, batch)
    for _ in range(300):
        agent, info = update(agent, batch)
    assert "one_step_mse" not in info
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(agent.params))
    assert agent.sample_actions(batch["observations"][:4], jax.random.PRNGKey(0)).dtype == jnp.float32
    for k in ("flow_loss", "completion_loss"):
        assert float(info[k]) < 0.7 * float(first[k]), (k, float(first[k]), float(info[k]))


@pytest.mark.slow
def test_without_the_grad_norm_diagnostic_the_update_is_the_same():
    batch = make_batch(jax.random.PRNGKey(14), n=64)
    agent = SSCPAgent.create(jax.random.PRNGKey(15), batch, TINY)
    quiet = agent.replace(config=SSCPConfig(**{**TINY.__dict__, "log_grad_norm": False}))
    update = jax.jit(lambda a, b: a.update(b))
    (new, info), (new_quiet, info_quiet) = update(agent, batch), update(quiet, batch)
    assert "grad_norm" in info and float(info["grad_norm"]) > 0 and "grad_norm" not in info_quiet
    jax.tree.map(np.testing.assert_array_equal, new.params, new_quiet.params)
    assert {k: float(v) for k, v in info_quiet.items()} == {k: float(v) for k, v in info.items() if k != "grad_norm"}
    # grad_norm (one reduction over the concatenated gradients) is the norm of this update's gradients
    _, key = jax.random.split(agent.rng)
    grads = jax.grad(lambda p: agent.total_loss(batch, p, key), has_aux=True)(agent.params)[0]
    np.testing.assert_allclose(float(info["grad_norm"]), float(optax.tree.norm(grads)), rtol=1e-5)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_k_step_sampler_makes_k_calls_and_is_exact_for_a_constant_field(steps):
    """k − 1 Euler steps then a completion jump: k network calls; a constant field c lands on z + c for any k."""
    calls = []
    c = jnp.array([0.3, -0.2])

    def field(obs, x, t, d):
        calls.append((float(t[0]), float(d[0])))
        return jnp.broadcast_to(c, x.shape)

    z = jax.random.normal(jax.random.PRNGKey(0), (4, 2)) * 0.3
    out = flow.euler_then_complete(field, jnp.zeros((4, 1)), z, steps)
    np.testing.assert_allclose(out, jnp.clip(z + c, -1, 1), atol=1e-6)
    assert len(calls) == steps
    assert [d for _, d in calls[:-1]] == [0.0] * (steps - 1)  # Euler steps use the velocity head
    t_last, d_last = calls[-1]
    assert abs(t_last + d_last - 1.0) < 1e-6  # the last call jumps to τ = 1
    calls.clear()
    np.testing.assert_allclose(flow.euler_sample(field, jnp.zeros((4, 1)), z, steps), jnp.clip(z + c, -1, 1), atol=1e-6)
    assert len(calls) == steps


def test_sample_steps_option_changes_acting_only(agent_and_batch):
    agent, batch = agent_and_batch
    obs, key = batch["observations"][:8], jax.random.PRNGKey(3)
    k_step = agent.replace(config=SSCPConfig(**{**TINY.__dict__, "sample_steps": 4}))
    a1, a4 = agent.sample_actions(obs, key), k_step.sample_actions(obs, key)
    assert a4.shape == a1.shape and float(jnp.abs(a4).max()) <= 1.0
    assert float(jnp.abs(a4 - a1).max()) > 1e-4


@pytest.mark.parametrize("field,value", [("sample_steps", 0), ("batch_size", 0), ("discount", 1.5), ("actor_ema", 0.0)])
def test_bad_agent_config_is_rejected(field, value):
    from sscp.errors import ConfigError

    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        SSCPConfig(**{field: value})


@pytest.mark.slow
def test_matmul_norm_grads_same_values_as_flax_layer_norm():
    """MatmulGradLayerNorm (option matmul_norm_grads) has flax LayerNorm's parameters and forward values, and the same
    gradients up to float rounding, inside the vmapped critic ensemble."""
    from sscp.nets import Ensemble

    x = jax.random.normal(jax.random.PRNGKey(0), (32, 7)) * 2.0 + 0.5
    plain = Ensemble((16, 16, 16), 2)
    matmul = Ensemble((16, 16, 16), 2, matmul_norm_grads=True)
    params = plain.init(jax.random.PRNGKey(1), x)
    assert jax.tree.structure(params) == jax.tree.structure(matmul.init(jax.random.PRNGKey(1), x))
    keys = iter(jax.random.split(jax.random.PRNGKey(2), 64))
    params = jax.tree.map(lambda v: v + 0.2 * jax.random.normal(next(keys), v.shape), params)  # scales/biases matter
    np.testing.assert_array_equal(plain.apply(params, x), matmul.apply(params, x))

    def loss(net):
        return lambda p, x: jnp.sum(jnp.sin(net.apply(p, x)))

    want = jax.grad(loss(plain), argnums=(0, 1))(params, x)
    got = jax.grad(loss(matmul), argnums=(0, 1))(params, x)
    for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * float(jnp.abs(w).max()))

    # bf16 networks: the same forward values; gradients within bf16 rounding (flax's backward rounds to bf16 where
    # this one keeps float32)
    plain16 = Ensemble((16, 16, 16), 2, dtype="bfloat16")
    matmul16 = Ensemble((16, 16, 16), 2, dtype="bfloat16", matmul_norm_grads=True)
    np.testing.assert_array_equal(plain16.apply(params, x), matmul16.apply(params, x))
    want = jax.grad(loss(plain16))(params, x)
    got = jax.grad(loss(matmul16))(params, x)
    for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        assert float(jnp.abs(g - w).max()) <= 0.05 * float(jnp.abs(w).max()) + 1e-6


@pytest.mark.slow
def test_a_separate_td_actor_gives_the_td_target_and_follows_its_own_rate():
    """td_actor_ema splits the EMA actor's two roles: the TD target's next action comes from the separate copy (its
    parameters change the critic loss, the acting actor's do not), which moves at its own rate; acting still uses
    the acting EMA actor. Without the option the acting actor plays both roles (the paper's)."""
    batch = make_batch(jax.random.PRNGKey(0))
    config = dataclasses.replace(TINY, td_actor_ema=0.5)
    agent = SSCPAgent.create(jax.random.PRNGKey(1), batch, config)
    update = jax.jit(lambda a: a.update(batch)[0])
    agent = update(update(agent))
    new = update(agent)
    expected = jax.tree.map(lambda p, t: 0.5 * p + 0.5 * t, agent.params["actor"], agent.target_params["td_actor"])
    assert _close(new.target_params["td_actor"], expected, atol=1e-7)
    assert not _close(new.target_params["td_actor"], new.target_params["actor"], atol=1e-6)

    key = jax.random.PRNGKey(3)

    def critic_loss(targets):
        return float(agent.replace(target_params=targets).total_loss(batch, agent.params, key)[1]["critic_loss"])

    moved = jax.tree.map(lambda x: x + 0.05, agent.target_params["td_actor"])
    assert critic_loss({**agent.target_params, "td_actor": moved}) != critic_loss(agent.target_params)
    acting_moved = jax.tree.map(lambda x: x + 0.05, agent.target_params["actor"])
    assert critic_loss({**agent.target_params, "actor": acting_moved}) == critic_loss(agent.target_params)
    obs = batch["observations"]
    with_acting_moved = agent.replace(target_params={**agent.target_params, "actor": acting_moved})
    assert not np.allclose(with_acting_moved.sample_actions(obs, key), agent.sample_actions(obs, key))

    plain = SSCPAgent.create(jax.random.PRNGKey(1), batch, TINY)
    assert "td_actor" not in plain.target_params and plain.td_actor() is plain.target_params["actor"]


def test_collecting_actions_follow_the_exploration_options():
    """By default SSCP collects with sample_actions (the EMA actor, one step: the paper's). explore_actor="online"
    collects with the trained actor, explore_sample_steps=k with k network calls, exploration_noise adds clipped
    Gaussian noise; evaluation (sample_actions) stays the EMA actor's in every case."""
    batch = make_batch(jax.random.PRNGKey(0))
    agent = SSCPAgent.create(jax.random.PRNGKey(1), batch, TINY)
    update = jax.jit(lambda a: a.update(batch)[0])
    agent = update(update(agent))  # the online and EMA actors now differ
    obs, key = batch["observations"], jax.random.PRNGKey(5)
    np.testing.assert_array_equal(agent.explore_actions(obs, key), agent.sample_actions(obs, key))
    action_key, noise_key = jax.random.split(key)
    z = jax.random.normal(action_key, (obs.shape[0], 3))

    def collected(**options):
        return agent.replace(config=dataclasses.replace(TINY, **options)).explore_actions(obs, key)

    def expected(actor, steps):
        return flow.euler_then_complete(agent.field(actor), obs, z, steps)

    ema, online = agent.target_params["actor"], agent.params["actor"]
    np.testing.assert_allclose(collected(explore_actor="online"), expected(online, 1), atol=1e-6)
    assert not np.allclose(expected(online, 1), expected(ema, 1), atol=1e-4)
    np.testing.assert_allclose(collected(explore_sample_steps=4), expected(ema, 4), atol=1e-6)
    assert not np.allclose(expected(ema, 4), expected(ema, 1), atol=1e-4)
    noise = 0.3 * jax.random.normal(noise_key, z.shape)
    np.testing.assert_allclose(collected(exploration_noise=0.3), jnp.clip(expected(ema, 1) + noise, -1, 1), atol=1e-6)
    # decayed over 4 updates from 0.3 to 0.1: after the 2 updates above, halfway (0.2)
    decayed = collected(exploration_noise=0.3, exploration_noise_decay=4, exploration_noise_final=0.1)
    np.testing.assert_allclose(decayed, jnp.clip(expected(ema, 1) + noise * 2 / 3, -1, 1), atol=1e-6)
    for options in ({"explore_actor": "online"}, {"explore_sample_steps": 4}, {"exploration_noise": 0.3}):
        other = agent.replace(config=dataclasses.replace(TINY, **options))
        np.testing.assert_array_equal(other.sample_actions(obs, key), agent.sample_actions(obs, key))


def test_decayed_exploration_noise_follows_the_update_count_and_then_stays():
    batch = make_batch(jax.random.PRNGKey(0))
    config = dataclasses.replace(TINY, exploration_noise=0.4, exploration_noise_decay=3, exploration_noise_final=0.1)
    agent = SSCPAgent.create(jax.random.PRNGKey(1), batch, config)
    update = jax.jit(lambda a: a.update(batch)[0])
    stds = []
    for _ in range(5):
        stds.append(float(agent.exploration_std()))
        agent = update(agent)
    np.testing.assert_allclose(stds, [0.4, 0.3, 0.2, 0.1, 0.1], atol=1e-6)
    with pytest.raises(ConfigError, match="exploration-noise-decay must be >= 0"):
        dataclasses.replace(TINY, exploration_noise_decay=-1)


def test_policy_noise_smooths_the_td_targets_next_action_only(agent_and_batch):
    """policy_noise σ (TD3's target-policy smoothing): the TD target scores the one-step next action plus
    clip(N(0, σ²), ±noise_clip), from a key of its own, so the paper's draws (policy_noise 0) stay as they were; the
    actor's losses do not change."""
    agent, batch = agent_and_batch
    key = jax.random.PRNGKey(7)

    def losses(**options):
        return agent.replace(config=dataclasses.replace(TINY, **options)).total_loss(batch, agent.params, key)[1]

    plain, smooth = losses(), losses(policy_noise=0.3)
    z_next = jax.random.normal(jax.random.split(key)[0], batch["actions"].shape)
    obs_next = batch["next_observations"]
    next_actions = flow.one_step_sample(agent.field(agent.target_params["actor"]), obs_next, z_next)
    noise = jnp.clip(0.3 * jax.random.normal(jax.random.fold_in(key, 1), next_actions.shape), -0.5, 0.5)
    next_q = agent.critic_def.apply(agent.target_params["critic"], obs_next, jnp.clip(next_actions + noise, -1, 1))
    target = batch["rewards"] + TINY.discount * batch["masks"] * next_q.min(axis=0)
    q = agent.critic_def.apply(agent.params["critic"], batch["observations"], agent._clipped_actions(batch))
    np.testing.assert_allclose(smooth["critic_loss"], jnp.mean((q - target[None]) ** 2), rtol=1e-5)
    assert abs(float(smooth["critic_loss"]) - float(plain["critic_loss"])) > 1e-6
    for name in ("flow_loss", "completion_loss", "q_loss"):
        assert float(smooth[name]) == float(plain[name])
    np.testing.assert_allclose(
        losses(policy_noise=0.3, noise_clip=1e-7)["critic_loss"], plain["critic_loss"], rtol=1e-5
    )
    with pytest.raises(ConfigError, match="policy-noise must be >= 0"):
        dataclasses.replace(TINY, policy_noise=-0.1)
    with pytest.raises(ConfigError, match="noise-clip must be positive"):
        dataclasses.replace(TINY, noise_clip=0.0)


def test_q_action_one_step_scores_the_acting_action_and_leaves_the_rest(agent_and_batch):
    """q_action="one_step": the Q term scores clip(z + h(s, z, 0, 1)) (the action the policy acts with), the flow and
    completion losses stay those of the paper's "completed" (the same draws), and the actor gets the Q gradient."""
    agent, batch = agent_and_batch
    one_step = agent.replace(config=dataclasses.replace(agent.config, q_action="one_step"))
    key = jax.random.PRNGKey(7)
    paper, variant = agent.total_loss(batch, agent.params, key)[1], one_step.total_loss(batch, agent.params, key)[1]
    _, _, z = one_step._draws(batch, key)
    action = flow.one_step_sample(one_step.field(agent.params["actor"]), batch["observations"], z)
    q = one_step.critic_def.apply(agent.params["critic"], batch["observations"], action).mean(axis=0)
    np.testing.assert_allclose(float(variant["q_loss"]), float(-q.mean() / jnp.abs(q).mean()), rtol=1e-5)
    assert abs(float(variant["q_loss"]) - float(paper["q_loss"])) > 1e-4
    for name in ("flow_loss", "completion_loss", "critic_loss", "one_step_mse"):
        np.testing.assert_allclose(float(variant[name]), float(paper[name]), rtol=1e-6)
    norms = grad_norms(lambda p: one_step.total_loss(batch, p, key)[1]["q_loss"], agent.params)
    assert norms["actor"] > 0 and norms["critic"] == 0
