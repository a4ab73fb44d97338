"""`sscp export`: one run's acting policy (the parameters `sample_actions` uses, e.g. SSCP's EMA actor) serialised
with `jax.export` into a self-contained file that `sscp.runtime.load` runs; checked against the trained agent."""

import inspect
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sscp import runtime
from sscp.errors import ConfigError, SSCPError

TOLERANCE = 1e-5  # max |exported - trained| allowed on the check's observations (float32 rounding of refactored ops)


class ExportError(SSCPError):
    """The exported policy does not act like the trained one."""


def is_goal_conditioned(agent) -> bool:
    """Returns whether the agent's sample_actions takes goals: sample_actions(observations, goals, key)."""
    return "goals" in inspect.signature(agent.sample_actions).parameters


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


def max_difference(agent, policy: runtime.Policy, observations: np.ndarray, goals: np.ndarray | None, seed) -> float:
    """Returns max |policy - agent.sample_actions| over `observations` (same noise key), the trained agent jitted as
    in training and evaluation."""
    key = jax.random.PRNGKey(1 if seed is None else seed)
    data = (observations,) if goals is None else (observations, goals)
    trained = np.asarray(jax.jit(lambda a, *x: a.sample_actions(*x))(agent, *data, key))
    exported = policy(*data, key=key if seed is None else None)
    return float(np.max(np.abs(exported - trained)))


def export_run(trainer, run_index: int, out: str | os.PathLike | None, seed: int | None, checks: int = 256) -> Path:
    """Returns the path of the policy file of run `run_index` of a restored Trainer, after checking that the loaded
    file acts like the trained agent on `checks` random observations (rows of the dataset when there is one, plus
    Gaussian noise around them) and printing the max abs difference; raises ExportError when it exceeds TOLERANCE."""
    if not 0 <= run_index < len(trainer.runs):
        raise ConfigError(
            f"--run must be in [0, {len(trainer.runs) - 1}] (the run folder has {len(trainer.runs)} runs)"
        )
    if getattr(trainer, "chunking", None) is not None:
        raise ConfigError(
            "this run predicts action chunks from observation histories (--agent.chunk-size / --agent.obs-history); "
            "exported policies act one step from one observation, so it cannot be exported yet"
        )
    run = trainer.runs[run_index]
    agent = jax.tree.map(lambda x: x[run_index], trainer.agents)
    rng = np.random.default_rng(0)
    if trainer.data is not None:
        base = np.asarray(trainer.data.observations[rng.integers(0, trainer.data.size, checks)])
    else:
        base = np.zeros((checks, trainer.obs_dim), np.float32)
    observations = (base + rng.normal(0, 0.1, base.shape)).astype(np.float32)
    obs_dim = observations.shape[1]
    action_dim = int(trainer.data.actions.shape[1]) if trainer.data is not None else trainer.action_dim
    goal_dim = obs_dim if is_goal_conditioned(agent) else None  # OGBench goals are observations
    goals = observations[rng.permutation(checks)] if goal_dim else None

    start = time.perf_counter()
    exported, header = export_policy(agent, obs_dim, action_dim, goal_dim, seed)
    header.update(agent=trainer.cfg.agent, run=run_index, task=run.dataset, seed_of_run=run.seed, env=run.env_name)
    header.update(step=trainer.total_step, run_dir=str(trainer.run_dir))
    data = runtime.pack(header, exported.serialize())
    path = Path(out) if out is not None else trainer.run_dir / f"policy_run{run_index}_step{trainer.total_step}.sscp"
    header, body = runtime.unpack(data)  # check what a user will load: the file's bytes, deserialised
    loaded = runtime.Policy(header, jax.export.deserialize(bytearray(body)))
    diff = max_difference(agent, loaded, observations, goals, seed)
    if not diff <= TOLERANCE:
        raise ExportError(
            f"the exported policy differs from the trained one by up to {diff:.3g} (> {TOLERANCE}) on {checks} "
            "observations; nothing was written"
        )
    from sscp.checkpoint import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    print(
        f"{path}: {trainer.cfg.agent} run {run_index} ({run.dataset}, seed {run.seed}) at step {trainer.total_step}, "
        f"{len(data) / 1e6:.2f} MB, platforms {', '.join(header['platforms'])}, noise "
        f"{'a key input' if seed is None else f'fixed (seed {seed})'}; max |exported - trained| = {diff:.3g} on "
        f"{checks} observations ({time.perf_counter() - start:.1f} s)"
    )
    return path
