"""`sscp export`: one run's acting policy (the parameters `sample_actions` uses, e.g. SSCP's EMA actor) serialised
with `jax.export` into a self-contained file that `sscp.runtime.load` runs, or (`--format numpy`: SSCP, SSCP-BC, flow
BC and Diffusion-QL) as the arrays of a numpy forward pass that `sscp.runtime_numpy.load` runs; checked against the
trained agent."""

import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sscp import runtime, runtime_numpy
from sscp.agents import AGENTS
from sscp.agents.base import Agent
from sscp.agents.dql import chain_noise, ddpm_schedule
from sscp.checkpoint import write_atomic
from sscp.errors import ConfigError, SSCPError
from sscp.nets import MLP, SinusoidalEmbedding, TimeStepEmbedding

TOLERANCE = 1e-5  # max |exported - trained| allowed on the check's observations (float32 rounding of refactored ops)


class ExportError(SSCPError):
    """The exported policy does not act like the trained one."""


def export_policy(
    agent,
    obs_dim: int,
    action_dim: int,
    goal_dim: int | None = None,
    seed: int | None = None,
    platforms: tuple[str, ...] = ("cpu", "cuda"),
):
    """Returns (jax.export.Exported, header) of policy(observations [B, obs_dim][, goals [B, goal_dim]][, key]) ->
    actions [B, action_dim] for any batch B, with the agent's parameters baked in as constants. With `seed` the noise
    key is PRNGKey(seed) inside the program (no key input); otherwise the key is the last input."""
    batch = jax.export.symbolic_shape("b")[0]
    specs = [jax.ShapeDtypeStruct((batch, obs_dim), jnp.float32)]
    if goal_dim is not None:
        specs.append(jax.ShapeDtypeStruct((batch, goal_dim), jnp.float32))

    def policy(*inputs):
        key = jax.random.PRNGKey(seed) if seed is not None else inputs[-1]
        data = inputs if seed is not None else inputs[:-1]
        return agent.sample_actions(*data, key).astype(jnp.float32)

    if seed is None:
        specs.append(jax.ShapeDtypeStruct((2,), jnp.uint32))
    exported = jax.export.export(jax.jit(policy), platforms=platforms)(*specs)
    header = {
        "obs_dim": obs_dim,
        "goal_dim": goal_dim,
        "action_dim": action_dim,
        "noise": "input" if seed is None else "fixed",
        "seed": seed,
        "platforms": list(platforms),
        "jax": jax.__version__,
    }
    return exported, header


def _sscp_calls(agent, net, params: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns (the time embedding e(τ_i, d_i) of each network call [steps, embed_dim], {"step_scale"}) of SSCP's
    flow.euler_then_complete: steps − 1 Euler steps, then one completion jump."""
    steps = agent.config.sample_steps
    # (τ, d, scale) of each call, as flow.euler_then_complete computes them in float32
    dt = np.float32(1.0 / steps)
    taus = [np.float32(i * (1.0 / steps)) for i in range(steps - 1)] + [np.float32((steps - 1) / steps)]
    ds = [np.float32(0.0)] * (steps - 1) + [np.float32(1.0) - taus[-1]]
    scales = [dt] * (steps - 1) + [np.float32(1.0) - taus[-1]]
    embed = TimeStepEmbedding(net.embed_dim, net.embed_dim, net.fourier_scale, net.layer_norm)
    e = embed.apply({"params": params["embed"]}, jnp.asarray(taus), jnp.asarray(ds))
    return np.asarray(e), {"step_scale": np.asarray(scales)}


def _flow_bc_calls(agent, net, params: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns (the time input t_i of each network call [steps, 1], {"step_scale"}) of flow.euler_sample."""
    steps = agent.config.flow_steps
    times = [np.float32(i * (1.0 / steps)) for i in range(steps)]  # as flow._euler computes them in float32
    return np.asarray(times)[:, None], {"step_scale": np.full(steps, 1.0 / steps, np.float32)}


def _dql_calls(agent, net, params: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns (the step embedding of each network call [T, time_dim], the reverse chain's coefficients per call) of
    DQLAgent.sample: calls at t = T − 1, …, 0."""
    steps = agent.config.diffusion_steps
    t = np.arange(steps - 1, -1, -1)
    sinusoidal = SinusoidalEmbedding(net.time_dim).apply({}, jnp.asarray(t, jnp.float32))
    e = MLP((2 * net.time_dim, net.time_dim), "mish").apply({"params": params["time_mlp"]}, sinusoidal)
    c = {k: np.asarray(v)[t] for k, v in ddpm_schedule(agent.config.beta_schedule, steps).items()}
    coefficients = {
        "x0_from_x": c["sqrt_recip_cumprod"],
        "x0_from_eps": c["sqrt_recipm1_cumprod"],
        "mean_x0": c["posterior_mean_x0"],
        "mean_xt": c["posterior_mean_xt"],
        "noise_std": np.where(t > 0, c["posterior_std"], 0.0),  # no noise after the last call
    }
    return np.asarray(e), coefficients


# The samplers of the agents `--format numpy` exports (those whose numpy_export() is not None: each acts with one MLP
# called `steps` times on [obs, x, time input] in some order): schedule -> (sscp.runtime_numpy's sampler, the time
# inputs and sampler coefficients of its calls).
SCHEDULES = {
    "euler_then_complete": ("euler", _sscp_calls),
    "euler": ("euler", _flow_bc_calls),
    "ddpm": ("ddpm", _dql_calls),
}


def numpy_exportable() -> list[str]:
    """Returns the names of the agents `--format numpy` exports (those that define numpy_export)."""
    return [name for name, (cls, _) in AGENTS.items() if cls.numpy_export is not Agent.numpy_export]


def numpy_policy(agent, agent_name: str, obs_dim: int) -> tuple[dict[str, np.ndarray], dict]:
    """Returns (arrays, header) of the numpy policy (sscp.runtime_numpy) that computes agent.sample_actions for the
    same observations and noise: each network call's time input is a constant, so its embedding's contribution to
    the first layer is folded (in float64, then float32) into one first-layer bias per call."""
    parts = agent.numpy_export()
    if parts is None:
        raise ConfigError(
            f"--format numpy exports {', '.join(numpy_exportable())} (one MLP called k times); export {agent_name} "
            "with --format jax"
        )
    net, acting_params, order, schedule = parts
    sampler, calls = SCHEDULES[schedule]
    layer_norm, dtype = getattr(net, "layer_norm", False), getattr(net, "dtype", "float32")
    if net.activation not in runtime_numpy.ACTIVATIONS or layer_norm or dtype != "float32":
        raise ConfigError(
            f"--format numpy exports networks with {' or '.join(runtime_numpy.ACTIVATIONS)}, no LayerNorm, float32; "
            f"this run has activation {net.activation}, layer norm {layer_norm}, dtype {dtype}: export it with "
            "--format jax"
        )
    params = jax.tree.map(np.asarray, acting_params["params"])
    time_inputs, coefficients = calls(agent, net, params)
    mlp = params["mlp"]
    first = mlp["Dense_0"]["kernel"]
    sizes = {"obs": obs_dim, "x": net.action_dim, "time": time_inputs.shape[1]}
    rows = dict(zip(order, np.split(first, np.cumsum([sizes[name] for name in order])[:-1]), strict=True))
    bias = mlp["Dense_0"]["bias"] + time_inputs.astype(np.float64) @ rows["time"].astype(np.float64)
    arrays = {"input_kernel": np.concatenate([rows["obs"], rows["x"]]), "input_bias": bias, **coefficients}
    for i in range(1, len(mlp)):
        arrays[f"kernel_{i}"] = mlp[f"Dense_{i}"]["kernel"]
        arrays[f"bias_{i}"] = mlp[f"Dense_{i}"]["bias"]
    header = dict(
        obs_dim=obs_dim, action_dim=net.action_dim, activation=net.activation, steps=len(time_inputs), sampler=sampler
    )
    return {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}, header


def sampler_noise(sampler: str, key: jax.Array, steps: int, shape: tuple[int, int]) -> jax.Array:
    """Returns the standard-normal draws [noise_draws, *shape] that sample_actions makes from `key`, in the order
    sscp.runtime_numpy's `noise=` takes them: z for an euler sampler, the reverse chain's `steps` draws for ddpm."""
    return chain_noise(key, steps, shape) if sampler == "ddpm" else jax.random.normal(key, shape)[None]


def max_difference(agent, policy, observations: np.ndarray, goals: np.ndarray | None, seed) -> float:
    """Returns max |policy - agent.sample_actions| over `observations` (same noise), the trained agent jitted as in
    training and evaluation. A runtime.Policy gets the same key; a runtime_numpy.Policy gets the noise that
    sample_actions draws from that key (sampler_noise: a sampler that drew its noise otherwise would fail the
    check)."""
    key = jax.random.PRNGKey(1 if seed is None else seed)
    data = (observations,) if goals is None else (observations, goals)
    trained = np.asarray(jax.jit(lambda a, *x: a.sample_actions(*x))(agent, *data, key))
    if isinstance(policy, runtime_numpy.Policy):
        exported = policy(
            observations, noise=np.asarray(sampler_noise(policy.sampler, key, policy.steps, trained.shape))
        )
    else:
        exported = policy(*data, key=key if seed is None else None)
    return float(np.max(np.abs(exported - trained)))


def export_run(
    trainer,
    run_index: int,
    out: str | os.PathLike | None,
    seed: int | None,
    checks: int = 256,
    format: str = "jax",
) -> Path:
    """Returns the path of the policy file of run `run_index` of a restored Trainer, after checking that the loaded
    file acts like the trained agent on `checks` random observations (rows of the dataset when there is one, plus
    Gaussian noise around them) and printing the max abs difference; raises ExportError when it exceeds TOLERANCE.
    `format` "jax" writes a jax.export program (sscp.runtime), "numpy" the arrays of sscp.runtime_numpy."""
    _check_export(trainer, run_index, seed, format)
    run = trainer.runs[run_index]
    agent = jax.tree.map(lambda x: x[run_index], trainer.agents)
    observations, action_dim = _check_observations(trainer, checks)
    obs_dim = observations.shape[1]
    goal_dim = obs_dim if agent.goal_conditioned else None  # OGBench goals are observations
    goals = observations[np.random.default_rng(1).permutation(checks)] if goal_dim else None

    start = time.perf_counter()
    source = dict(agent=trainer.cfg.agent, run=run_index, task=run.dataset, seed_of_run=run.seed, env=run.env_name)
    source.update(step=trainer.total_step, run_dir=str(trainer.run_dir))
    name = trainer.run_dir / f"policy_run{run_index}_step{trainer.total_step}"
    # each branch checks what a user will load: the file's bytes, read back
    if format == "numpy":
        arrays, header = numpy_policy(agent, trainer.cfg.agent, obs_dim)
        data = runtime_numpy.pack({**header, **source}, arrays)
        loaded = runtime_numpy.Policy(*runtime_numpy.unpack(data))
        path = Path(out) if out is not None else name.with_suffix(".npz")
        described = f"numpy, {header['steps']} network call(s) per action, noise drawn with numpy or passed as noise="
    else:
        exported, header = export_policy(agent, obs_dim, action_dim, goal_dim, seed)
        data = runtime.pack({**header, **source}, exported.serialize())
        header, body = runtime.unpack(data)
        loaded = runtime.Policy(header, jax.export.deserialize(bytearray(body)))
        path = Path(out) if out is not None else name.with_suffix(".sscp")
        noise = "a key input" if seed is None else f"fixed (seed {seed})"
        described = f"platforms {', '.join(header['platforms'])}, noise {noise}"
    diff = max_difference(agent, loaded, observations, goals, seed)
    if not diff <= TOLERANCE:
        raise ExportError(
            f"the exported policy differs from the trained one by up to {diff:.3g} (> {TOLERANCE}) on {checks} "
            "observations; nothing was written"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    print(
        f"{path}: {trainer.cfg.agent} run {run_index} ({run.dataset}, seed {run.seed}) at step {trainer.total_step}, "
        f"{len(data) / 1e6:.2f} MB, {described}; max |exported - trained| = {diff:.3g} on {checks} observations "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return path


def _check_export(trainer, run_index: int, seed: int | None, format: str) -> None:
    """Raises a ConfigError for a run index out of range, a run that acts in chunks, or --seed with numpy."""
    if not 0 <= run_index < len(trainer.runs):
        raise ConfigError(
            f"--run must be in [0, {len(trainer.runs) - 1}] (the run folder has {len(trainer.runs)} runs)"
        )
    if getattr(trainer, "chunking", None) is not None:
        raise ConfigError(
            "this run predicts action chunks from observation histories (--agent.chunk-size / --agent.obs-history); "
            "exported policies act one step from one observation, so it cannot be exported yet"
        )
    if format == "numpy" and seed is not None:
        raise ConfigError(
            "--seed fixes the jax noise key inside a --format jax program; a numpy policy draws its noise with numpy "
            "(runtime_numpy.load(path, seed)) or takes noise=z per call: drop --seed, or use --format jax"
        )


def _check_observations(trainer, checks: int) -> tuple[np.ndarray, int]:
    """Returns (`checks` observations to compare the policies on: dataset rows, or zeros without a dataset, plus
    Gaussian noise of std 0.1; the action size)."""
    rng = np.random.default_rng(0)
    if trainer.data is not None:
        base = np.asarray(trainer.data.observations[rng.integers(0, trainer.data.size, checks)])
    else:
        base = np.zeros((checks, trainer.obs_dim), np.float32)
    observations = (base + rng.normal(0, 0.1, base.shape)).astype(np.float32)
    action_dim = int(trainer.data.actions.shape[1]) if trainer.data is not None else trainer.action_dim
    return observations, action_dim
