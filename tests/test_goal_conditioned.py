"""Goal-conditioned training: the goal sampler's distributions (fractions, geometric offsets, subgoal capping, rewards
and masks at the goal), rejection of data without episode ends, per-dataset presets, GC-SSCP's gradient paths and
one-call acting, and every goal-conditioned agent learning and running end to end through the Trainer."""

import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import BASE_DATASET, EVAL_MAX_STEPS, TASKS, eval_with_video

from sscp import checkpoint
from sscp.agents import get_agent
from sscp.agents.gc_sscp import GCSSCPConfig
from sscp.agents.gcbc import GCBCConfig
from sscp.agents.hiql import HIQLConfig
from sscp.data.goals import GoalData, GoalSampling
from sscp.errors import ConfigError, DataError
from sscp.nets import Actor, GoalRepresentation, VectorField, length_normalize
from sscp.runlog import read_csv
from sscp.train import Trainer

GC_AGENTS = ("gc_sscp", "gcbc", "gcivl", "hiql")
TINY = {
    "gc_sscp": {"actor_hidden_dims": (16, 16), "value_hidden_dims": (16, 16), "time_embed_dim": 16},
    "gcbc": {"actor_hidden_dims": (16, 16)},
    "gcivl": {"actor_hidden_dims": (16, 16), "value_hidden_dims": (16, 16)},
    "hiql": {"actor_hidden_dims": (16, 16), "value_hidden_dims": (16, 16)},
}


def trajectories(lengths: list[int], obs_dim: int = 2, seed: int = 0) -> dict:
    """Returns loaded-layout arrays of episodes with the given numbers of transitions; observations[i] starts with
    (i, episode), so a goal observation tells which row it came from."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    episode = np.repeat(np.arange(len(lengths)), lengths)
    obs = np.concatenate([np.arange(n)[:, None], episode[:, None], rng.normal(size=(n, obs_dim - 2))], axis=1)
    terminals = np.zeros(n, np.float32)
    terminals[np.cumsum(lengths) - 1] = 1.0
    return {
        "observations": obs.astype(np.float32),
        "actions": np.tanh(rng.normal(size=(n, 2))).astype(np.float32),
        "next_observations": (obs + 0.5).astype(np.float32),
        "terminals": terminals,
    }


def draw(data: GoalData, rows: int) -> dict:
    """Returns `rows` sampled rows as numpy, drawn by 4 vmapped samplers under jit (as runs draw them)."""
    keys = jax.random.split(jax.random.PRNGKey(7), 4)
    batches = jax.jit(jax.vmap(lambda k: data.sample(k, rows // 4, 0)))(keys)
    return {k: np.asarray(v).reshape(rows, *v.shape[2:]) for k, v in batches.items()}


def ends(lengths: list[int]) -> np.ndarray:
    """Returns each row's last transition index."""
    last = np.cumsum(lengths) - 1
    return np.repeat(last, lengths)


# ---- the sampler ----------------------------------------------------------------------------------------------------


def test_value_goal_fractions_rewards_and_masks():
    lengths = [200] * 50
    data = GoalData.from_arrays(trajectories(lengths), GoalSampling(), "pointmaze-medium-v0")
    b = draw(data, 40_000)
    idx, goal = b["observations"][:, 0].astype(int), b["value_goals"][:, 0].astype(int)
    same_episode = b["value_goals"][:, 1] == b["observations"][:, 1]
    current, later = goal == idx, same_episode & (goal > idx)
    # 0.2 current (+ trajectory goals of an episode's last row, capped there: 0.5/200), 0.5 later in the trajectory
    # (+ random goals that happen to fall later in the same episode: about 0.3 · 1/50 · 1/2), 0.3 random
    assert abs(current.mean() - 0.2025) < 0.01
    assert abs(later.mean() - 0.5008) < 0.012
    assert abs((~current & ~later).mean() - 0.2967) < 0.012
    np.testing.assert_array_equal(b["rewards"], np.where(current, 0.0, -1.0))
    np.testing.assert_array_equal(b["masks"], np.where(current, 0.0, 1.0))
    assert len(np.unique(b["observations"][:, 0])) > 7000  # 4 vmapped samplers with their own keys


def test_geometric_offsets_of_trajectory_value_goals():
    lengths = [1000] * 200
    data = GoalData.from_arrays(trajectories(lengths), GoalSampling(discount=0.9), "pointmaze-medium-v0")
    b = draw(data, 40_000)
    idx, goal = b["observations"][:, 0].astype(int), b["value_goals"][:, 0].astype(int)
    far_from_end = ends(lengths)[idx] - idx > 300  # where the cap at the trajectory end never binds
    # later in the trajectory, within 300 steps (P(Δ > 300) = 0.9^300): random goals land there 1 time in 2,000
    later = (b["value_goals"][:, 1] == b["observations"][:, 1]) & (goal > idx) & (goal - idx < 300) & far_from_end
    offsets = goal[later] - idx[later]
    assert offsets.min() >= 1
    assert abs(offsets.mean() - 10.0) < 0.6  # Geometric(1 − γ): mean 1 / (1 − γ)
    assert abs((offsets == 1).mean() - 0.1) < 0.02  # P(Δ = 1) = 1 − γ


@pytest.mark.parametrize("p_random", [0.0, 0.5])
def test_actor_goals_and_subgoal_targets(p_random):
    lengths = [60, 5, 200, 1, 120] * 20
    k = 25
    sampling = GoalSampling(actor_p_randomgoal=p_random, subgoal_steps=k)
    data = GoalData.from_arrays(trajectories(lengths), sampling, "pointmaze-medium-v0")
    b = draw(data, 20_000)
    idx, goal = b["observations"][:, 0].astype(int), b["actor_goals"][:, 0].astype(int)
    final = ends(lengths)[idx]
    in_trajectory = (b["actor_goals"][:, 1] == b["observations"][:, 1]) & (goal >= np.minimum(idx + 1, final))
    if p_random == 0.0:
        assert in_trajectory.all()
        middle = idx + 1 < final
        position = (goal[middle] - idx[middle] - 1) / (final[middle] - idx[middle] - 1)  # uniform over later states
        assert abs(position.mean() - 0.5) < 0.02
    else:
        assert abs((~in_trajectory).mean() - 0.5 * (1 - 1 / 100)) < 0.02  # random goals rarely land in the trajectory
    # Low-level subgoal: k steps ahead, capped at the trajectory's last transition.
    np.testing.assert_array_equal(b["low_actor_goals"][:, 0].astype(int), np.minimum(idx + k, final))
    # High-level target: k steps towards a trajectory goal (capped at the goal), or at the trajectory end for a random
    # goal; a random goal that lands in the trajectory may be either.
    target = b["high_actor_targets"][:, 0].astype(int)
    towards_goal, towards_end = np.minimum(idx + k, goal), np.minimum(idx + k, final)
    assert np.all((target == towards_goal) | (target == towards_end))
    if p_random == 0.0:
        np.testing.assert_array_equal(target, towards_goal)


def test_data_without_episode_ends_is_rejected():
    arrays = trajectories([30, 30])
    for broken, message in [
        ({k: v for k, v in arrays.items() if k != "terminals"}, "no key 'terminals'"),
        ({**arrays, "terminals": np.zeros(60, np.float32)}, "'terminals' is 0 everywhere"),
        ({**arrays, "terminals": np.eye(60, dtype=np.float32)[29]}, "does not end with 1"),
    ]:
        with pytest.raises(DataError, match=message):
            GoalData.from_arrays(broken, GoalSampling(), "pointmaze-medium-v0", "made.npz")


def test_sampling_fields_are_validated():
    with pytest.raises(ConfigError, match="sum to 1"):
        GoalSampling(value_p_curgoal=0.5)
    with pytest.raises(ConfigError, match="actor-p-randomgoal"):
        GCSSCPConfig(actor_p_randomgoal=1.5)
    with pytest.raises(ConfigError, match="unknown --agent.preset 'nope'; valid: auto, none, pointmaze-giant"):
        HIQLConfig(preset="nope")


def test_presets_follow_the_dataset_and_yield_to_explicit_options():
    large = GCSSCPConfig().with_preset("pointmaze-large-navigate-v0")
    assert (large.preset, large.subgoal_steps, large.discount, large.actor_p_randomgoal) == (
        "pointmaze-large-navigate", 100, 0.995, 0.0
    )  # fmt: skip
    assert large.with_preset("pointmaze-large-navigate-v0") == large  # resolving again changes nothing
    stitch = GCSSCPConfig(discount=0.99).with_preset("/data/pointmaze-large-stitch-v0.npz", {"discount"})
    # the authors' GC-SSCP keeps trajectory actor goals on point-maze stitch (random goals on ant-maze stitch only)
    assert (stitch.subgoal_steps, stitch.discount, stitch.actor_p_randomgoal) == (50, 0.99, 0.0)
    medium = GCSSCPConfig(preset="pointmaze-teleport-navigate").with_preset("pointmaze-medium-navigate-v0")
    assert (medium.subgoal_steps, medium.discount) == (50, 0.995)  # a named preset wins over the dataset's
    hiql = HIQLConfig().with_preset("pointmaze-giant-stitch-v0")  # OGBench's commands
    assert (hiql.subgoal_steps, hiql.discount, hiql.actor_p_randomgoal) == (25, 0.995, 0.5)
    gcbc = GCBCConfig().with_preset("pointmaze-medium-stitch-v0")  # OGBench's GCBC keeps trajectory goals on stitch
    assert (gcbc.preset, gcbc.actor_p_randomgoal) == ("none", 0.0)
    assert GCSSCPConfig().with_preset("cube-single-play-v0").preset == "none"


# ---- GC-SSCP --------------------------------------------------------------------------------------------------------


def tiny_agent(name: str, seed: int = 0, **changes):
    """Returns (agent, goal batch of 64 rows) for a tiny agent on synthetic trajectories."""
    agent_cls, config_cls = get_agent(name)
    config = config_cls(batch_size=64, **TINY[name], **changes)
    arrays = trajectories([40] * 20, obs_dim=4)
    arrays["observations"][:, :2] /= 100.0  # index and episode columns on the scale of the others
    arrays["next_observations"] = arrays["observations"] + 0.05
    data = GoalData.from_arrays(arrays, config.sampling(), "pointmaze-medium-v0")
    batch = jax.jit(data.sample, static_argnums=1)(jax.random.PRNGKey(seed), 64)
    return jax.jit(lambda k: agent_cls.create(k, batch, config))(jax.random.PRNGKey(seed)), batch


def _grad_norms(loss_fn, params) -> dict[str, jax.Array]:
    """Returns, per network, the summed |gradient| of loss_fn's loss."""
    grads = jax.grad(lambda p: loss_fn(p)[0])(params)
    return {k: sum(jnp.abs(x).sum() for x in jax.tree.leaves(v)) for k, v in grads.items()}


@pytest.mark.slow
def test_gc_sscp_gradient_paths():
    agent, batch = tiny_agent("gc_sscp")
    agent = agent.replace(target_params=jax.tree.map(lambda x: x + 0.01, agent.target_params))  # EMA ≠ online
    z, z2 = (jax.random.normal(jax.random.PRNGKey(k), (64, agent.actor_def.action_dim)) for k in (3, 4))
    paths = jax.jit(
        lambda p: {
            "value": _grad_norms(lambda q: agent.value_loss(batch, q), p),
            "high": _grad_norms(lambda q: agent.high_loss(batch, q, z), p),
            "low": _grad_norms(lambda q: agent.low_loss(batch, q, z), p),
            "consistency": _grad_norms(lambda q: agent.consistency_loss(batch, q, z, z2), p),
        }
    )(agent.params)
    reached = {loss: {net for net, g in grads.items() if float(g) > 0} for loss, grads in paths.items()}
    # φ learns from the value, the high level and the consistency term's one-call route; the low level stops it
    assert reached == {
        "value": {"phi", "value"},
        "high": {"phi", "actor"},
        "low": {"actor"},
        "consistency": {"phi", "actor"},
    }

    def with_targets(targets):
        return agent.replace(target_params=targets).consistency_loss(batch, agent.params, z, z2)[0]

    target_grads = jax.jit(jax.grad(with_targets))(agent.target_params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(target_grads))  # stop-gradient
    moved = jax.tree.map(lambda x: x + 0.05, agent.target_params)
    assert float(with_targets(moved)) != float(with_targets(agent.target_params))  # but the target is the EMA actor's


@pytest.mark.parametrize("name", ["gc_sscp", "hiql", "gcivl"])
@pytest.mark.slow
def test_goal_conditioned_targets_move_toward_the_pre_step_parameters(name):
    """As OGBench's and the authors' code: θ̄ ← τ·θ_before + (1 − τ)·θ̄ for the value heads (and GC-SSCP's EMA actor)."""
    rate = {"value_tau": 0.5} if name == "gc_sscp" else {"tau": 0.5}
    agent, batch = tiny_agent(name, **rate)
    update = jax.jit(lambda a: a.update(batch)[0])
    agent = update(update(agent))
    new = update(agent)
    old_target = agent.target_params["value"] if name == "gc_sscp" else agent.target_value
    new_target = new.target_params["value"] if name == "gc_sscp" else new.target_value
    for before, target, got in zip(
        *(jax.tree.leaves(t) for t in (agent.params["value"], old_target, new_target)), strict=True
    ):
        np.testing.assert_allclose(got, 0.5 * before + 0.5 * target, rtol=0, atol=1e-6)
    assert any(
        not np.allclose(g, 0.5 * a + 0.5 * t, rtol=0, atol=1e-6)
        for a, t, g in zip(*(jax.tree.leaves(x) for x in (new.params["value"], old_target, new_target)), strict=True)
    )


def _finished(x: jax.Array, a: int) -> jax.Array:
    """(action clipped to [−1, 1], representation length-normalised), as the authors' consistency term uses both."""
    return jnp.concatenate([jnp.clip(x[:, :a], -1.0, 1.0), length_normalize(x[:, a:])], axis=-1)


def _per_part_error(x: jax.Array, target: jax.Array, a: int) -> jax.Array:
    """Per row: mean squared error over the action dims + mean over the representation dims."""
    return jnp.mean((x[:, :a] - target[:, :a]) ** 2, -1) + jnp.mean((x[:, a:] - target[:, a:]) ** 2, -1)


@pytest.mark.slow
def test_gc_sscp_losses_are_the_authors():
    """Each GC-SSCP loss recomputed here from the networks, as the authors' code writes it: regressions weigh the
    action and the representation errors as two means; the consistency target takes fresh noise at level 1 and is
    clipped/normalised, and so is the one-call route; high and low share one noise draw."""
    agent, batch = tiny_agent("gc_sscp")
    agent = agent.replace(target_params=jax.tree.map(lambda x: x + 0.01, agent.target_params))
    params, a = agent.params, batch["actions"].shape[-1]
    obs, goals, targets = batch["observations"], batch["actor_goals"], batch["high_actor_targets"]
    z, z2 = (jax.random.normal(jax.random.PRNGKey(k), (64, a + agent.config.rep_dim)) for k in (3, 4))

    def value_mean(s, g):
        return agent.value(params["phi"], params["value"], s, g).mean(0)

    # high level: (s, φ([s; g])) → (a_t, φ([s; s_{t+k}])), AWR weights from V(s_{t+k}, g) − V(s, g)
    w = jnp.minimum(jnp.exp(5.0 * (value_mean(targets, goals) - value_mean(obs, goals))), 100.0)
    x = agent.jump(params["actor"], obs, agent.phi(params["phi"], obs, goals), z, 0.0, 1.0)
    target = jnp.concatenate([batch["actions"], agent.phi(params["phi"], obs, targets)], -1)
    np.testing.assert_allclose(agent.high_loss(batch, params, z)[0], jnp.mean(w * _per_part_error(x, target, a)), 1e-5)

    # consistency: EMA actor, level 0 with z, then level 1 with fresh z2; the one call at jump 2 from φ([s; g])
    ema, phi = agent.target_params["actor"], agent.phi(params["phi"], obs, goals)
    subgoal = length_normalize(agent.jump(ema, obs, phi, z, 0.0, 1.0)[:, a:])
    expected_target = _finished(agent.jump(ema, obs, subgoal, z2, 1.0, 1.0), a)
    np.testing.assert_allclose(agent.consistency_target(batch, params, z, z2), expected_target, atol=1e-6)
    assert float(jnp.abs(agent.consistency_target(batch, params, z, z) - expected_target).max()) > 1e-3  # z2 is used
    one_call = _finished(agent.jump(params["actor"], obs, phi, z, 0.0, 2.0), a)
    expected = jnp.mean(_per_part_error(one_call, expected_target, a))
    np.testing.assert_allclose(agent.consistency_loss(batch, params, z, z2)[0], expected, rtol=1e-5)

    # total_loss draws one noise for both regressions
    key = jax.random.PRNGKey(9)
    info = agent.total_loss(batch, params, key)[1]
    shared = agent._noise(jax.random.split(key, 3)[0], obs)
    np.testing.assert_allclose(info["high_loss"], agent.high_loss(batch, params, shared)[0], rtol=1e-5)
    np.testing.assert_allclose(info["low_loss"], agent.low_loss(batch, params, shared)[0], rtol=1e-5)


def test_actor_embeddings_have_layer_norm_with_the_actor():
    """The τ/d (level/jump) embedding MLPs carry LayerNorm exactly when the actor MLP does (the authors' networks)."""
    obs, x, t = jnp.zeros((1, 3)), jnp.zeros((1, 2)), jnp.zeros((1,))
    for layer_norm in (True, False):
        net = VectorField(action_dim=2, hidden_dims=(8, 8), layer_norm=layer_norm, embed_dim=8)
        embed = net.init(jax.random.PRNGKey(0), obs, x, t, t)["params"]["embed"]
        assert ("LayerNorm_0" in embed["t_mlp"]) == layer_norm and ("LayerNorm_0" in embed["d_mlp"]) == layer_norm


def _module_calls(fn, *modules: type) -> dict[str, int]:
    """Returns how often fn calls each top-level network (not a submodule) of the given classes."""
    counts = dict.fromkeys((m.__name__ for m in modules), 0)

    def count(next_fun, args, kwargs, context):
        top_level = not isinstance(context.module.parent, nn.Module)
        if context.method_name == "__call__" and isinstance(context.module, modules) and top_level:
            counts[type(context.module).__name__] += 1
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(count):
        fn()
    return counts


@pytest.mark.parametrize(
    "name,calls",
    [
        ("gc_sscp", {"VectorField": 1, "GoalRepresentation": 1, "Actor": 0}),
        ("hiql", {"VectorField": 0, "GoalRepresentation": 0, "Actor": 2}),
        ("gcivl", {"VectorField": 0, "GoalRepresentation": 0, "Actor": 1}),
        ("gcbc", {"VectorField": 0, "GoalRepresentation": 0, "Actor": 1}),
    ],
)
def test_network_calls_per_action(name, calls):
    agent, batch = tiny_agent(name)
    obs, goals, key = batch["observations"], batch["actor_goals"], jax.random.PRNGKey(5)
    counted = _module_calls(lambda: agent.sample_actions(obs, goals, key), VectorField, GoalRepresentation, Actor)
    assert counted == calls
    actions = agent.sample_actions(obs, goals, key)
    assert actions.shape == batch["actions"].shape and float(jnp.abs(actions).max()) <= 1.0
    if name == "gc_sscp":  # the one call is the EMA actor at level 0, jump 2, from (s, φ([s; g]))
        z = agent._noise(key, obs)
        phi = agent.phi(agent.params["phi"], obs, goals)
        expected = jnp.clip(agent.jump(agent.target_params["actor"], obs, phi, z, 0.0, 2.0)[:, :2], -1.0, 1.0)
        np.testing.assert_allclose(actions, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name,loss", [("gc_sscp", "high_loss"), ("gcbc", "mse"), ("gcivl", "value_loss"), ("hiql", "value_loss")]
)
@pytest.mark.slow
def test_agent_learns_on_a_fixed_batch(name, loss):
    agent, batch = tiny_agent(name, lr=3e-3)
    update = jax.jit(lambda a, b: a.update(b))
    agent, first = update(agent, batch)
    for _ in range(150):
        agent, info = update(agent, batch)
    assert np.isfinite([float(v) for v in info.values()]).all()
    assert float(info[loss]) < 0.7 * float(first[loss]), (first[loss], info[loss])


# ---- the Trainer ----------------------------------------------------------------------------------------------------


GC_RUN = {"dataset": (BASE_DATASET,), "steps": 100, "seeds": (0, 1), "save_every": 50}


@pytest.fixture(scope="module")
def trained(tiny_config, tmp_path_factory):
    """Returns train(name) -> (Trainer, final results): the agent trained once per module on the goal-conditioned
    dataset (2 seeds, 100 steps, a checkpoint every 50), shared by the end-to-end and the resume test."""
    runs = {}

    def train(name: str):
        if name not in runs:
            cfg = tiny_config(tmp_path_factory.mktemp(name) / "run", agent=name, **GC_RUN)
            trainer = Trainer(cfg, {"batch_size": 32, **TINY[name]})
            runs[name] = (trainer, trainer.train())
        return runs[name]

    return train


@pytest.mark.parametrize("name", GC_AGENTS)
@pytest.mark.slow
def test_end_to_end_on_the_evaluation_goals(name, trained):
    trainer, results = trained(name)
    assert trainer.agent_cfg.preset == "pointmaze-medium-navigate" or name == "gcbc"
    evals = read_csv(trainer.run_dir / "eval.csv")
    assert [(r["step"], r["run"], r["env"]) for r in evals] == [("100", str(i), "pointmaze-medium-v0") for i in (0, 1)]
    goal_columns = [f"eval/success_goal{i}" for i in range(1, 6)]
    assert set(goal_columns) <= set(evals[0])
    for row, res in zip(evals, results, strict=True):
        per_goal = [float(row[c]) for c in goal_columns]
        assert float(row["eval/success"]) == pytest.approx(np.mean(per_goal)) == res["success"]
        assert 1 <= float(row["eval/length"]) <= EVAL_MAX_STEPS
    rows = read_csv(trainer.run_dir / "train.csv")
    assert [(r["step"], r["run"]) for r in rows] == [(s, i) for s in ("50", "100") for i in ("0", "1")]
    assert all(np.isfinite(float(v)) for r in rows for k, v in r.items() if k.startswith("train/"))
    assert [p.name for p in checkpoint.list_checkpoints(trainer.run_dir / "checkpoints")] == [
        "step_0000000050.ckpt", "step_0000000100.ckpt"
    ]  # fmt: skip


@pytest.mark.slow
def test_resume_of_a_goal_conditioned_run_is_exact(trained, tiny_config, tmp_path):
    """A HIQL run cut back to its step-50 checkpoint (as a kill after it leaves it, with later rows in train.csv) and
    resumed ends bit for bit where the uninterrupted run ends: the goal sampler draws from each agent's own RNG,
    which the checkpoint holds. (HIQL: the cheapest to compile of the agents with targets and φ; the Trainer treats
    every goal-conditioned agent alike.)"""
    straight, _ = trained("hiql")
    shutil.copytree(straight.run_dir, tmp_path / "resumed")
    (tmp_path / "resumed" / "checkpoints" / "step_0000000100.ckpt").unlink()
    resumed = Trainer(tiny_config(tmp_path / "resumed", agent="hiql", **GC_RUN), {"batch_size": 32, **TINY["hiql"]})
    resumed.train()
    assert resumed.step == 100
    for a, b in zip(jax.tree.leaves(straight.agents), jax.tree.leaves(resumed.agents), strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    for name in ("train.csv", "eval.csv"):
        rows = [
            [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_csv(run_dir / name)]
            for run_dir in (straight.run_dir, resumed.run_dir)
        ]
        assert rows[0] == rows[1], name


@pytest.mark.slow
def test_eval_video_records_one_episode_per_goal(tiny_config, tmp_path):
    cfg = tiny_config(tmp_path / "run", agent="gcbc", dataset=(BASE_DATASET,), steps=10, save_every=10, log_every=10)
    Trainer(cfg, {"batch_size": 32, **TINY["gcbc"]}).train()
    done = eval_with_video(tmp_path / "run", max_steps=3)
    videos = sorted(p.name for p in (tmp_path / "run" / "videos").glob("*.mp4"))
    assert videos == [f"run0-{BASE_DATASET}-seed0-goal{g}-step10.mp4" for g in range(1, 6)]
    assert done.stdout.count("(3 steps, return") == 5


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"dataset": TASKS[:1]}, "is a single-task dataset; goal-conditioned agents train on the goal-conditioned one"),
        ({"dataset": (BASE_DATASET, BASE_DATASET)}, "give one dataset"),
        ({"dataset": (BASE_DATASET,), "online_steps": 10}, "trains offline only"),
    ],
)
def test_goal_conditioned_runs_reject_what_they_cannot_do(changes, message, tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=message):
        Trainer(tiny_config(tmp_path / "run", agent="gc_sscp", **changes), TINY["gc_sscp"])
