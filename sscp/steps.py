"""The jitted pieces of training, built once per process: one update with its batch sampled on the device, K of them
vmapped over runs in one lax.scan, acting for evaluation, and the placement of the runs over local devices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sscp.data.dataset import OfflineData
from sscp.errors import ConfigError


def make_step_fn(batch_size: int, skip_nonfinite: bool):
    """Returns step(agent, task, data) -> (agent, info): sample a batch on the device, then one update."""

    def step(agent, task, data: OfflineData):
        rng, key = jax.random.split(agent.rng)
        agent = agent.replace(rng=rng)
        batch = data.sample(key, batch_size, task)
        new_agent, info = agent.update(batch)
        if skip_nonfinite:
            ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(info)]))
            new_agent = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new_agent, agent)
            new_agent = new_agent.replace(rng=jax.random.fold_in(rng, 1))
            info = {**info, "skipped": 1.0 - ok.astype(jnp.float32)}
        return new_agent, info

    return step


def make_update_scan(step_fn, unroll: int = 1):
    """Returns scan(agents, tasks, data, n) -> (agents, info[n, runs]): n vmapped updates in one compiled lax.scan
    call (the offline loop makes one call per --log-every updates; "chunk" in sscp means action chunks, and
    --env-steps-per-call the online env steps per device call).

    unroll > 1 puts that many updates in one loop iteration: fewer loop-condition round trips to the host on GPUs.
    """

    def scan(agents, tasks, data, num_steps: int):
        def body(carry, _):
            return jax.vmap(step_fn, in_axes=(0, 0, None))(carry, tasks, data)

        return jax.lax.scan(body, agents, None, length=num_steps, unroll=min(unroll, num_steps))

    return jax.jit(scan, static_argnums=3, donate_argnums=0)


def init_agents(agent_cls, agent_cfg, example: dict, seeds: list[int]):
    """Returns one agent per seed, stacked along a leading run axis, each initialised from PRNGKey(seed)."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    return jax.vmap(lambda k: agent_cls.create(k, example, agent_cfg))(keys)


def run_sharding(num_runs: int, devices: int = 0) -> jax.sharding.NamedSharding | None:
    """Returns the sharding that splits the leading run axis over local devices, or None for one device.

    devices = 0 takes the most local devices (of the default backend) that divide num_runs evenly; an explicit count
    must divide num_runs and not exceed the local devices. The runs are independent, so the jitted updates run on
    every device at once without communication; the dataset is replicated on each."""
    local = jax.local_devices()
    if devices > len(local):
        raise ConfigError(f"--devices {devices}: this machine has {len(local)} {local[0].platform} device(s)")
    if devices and num_runs % devices:
        raise ConfigError(
            f"--devices {devices} does not divide the {num_runs} runs (datasets × seeds) evenly; use a divisor or 0"
        )
    count = devices or max(d for d in range(1, len(local) + 1) if num_runs % d == 0)
    if count == 1:
        return None
    mesh = jax.sharding.Mesh(np.array(local[:count]), ("runs",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))


def place_runs(tree, sharding: jax.sharding.NamedSharding | None):
    """Returns tree (leading axis: runs) split over the devices of `sharding`, or as is without one."""
    return tree if sharding is None else jax.device_put(tree, sharding)


def place_data(data, sharding: jax.sharding.NamedSharding | None):
    """Returns data copied whole to every device of `sharding`'s mesh (each samples its runs' batches from its own
    copy), or as is without one."""
    if sharding is None:
        return data
    return jax.device_put(data, jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec()))


def make_act_fn():
    """Returns act(agents, run_index [M], obs [M, d], key, goals [M, g] = None, ids [M, k] = None) -> actions
    [M, a]: slot m acts with agent run_index[m], toward goals[m] if goals are given (goal-conditioned agents). Slot
    m's noise key is key folded with each of ids[m] (evaluation passes (target, episode, step in episode), so a
    slot's noise does not depend on which or how many slots there are), or the m-th of split(key, M) without ids."""

    def act(agents, runs, obs, key, goals=None, ids=None):
        if ids is None:
            keys = jax.random.split(key, runs.shape[0])
        else:
            keys = jax.vmap(lambda i: functools.reduce(jax.random.fold_in, list(i), key))(ids)

        def one(r, o, k, g):
            agent = jax.tree.map(lambda x: x[r], agents)
            return agent.sample_actions(o, k) if g is None else agent.sample_actions(o, g, k)

        return jax.vmap(one)(runs, obs, keys, goals)

    return jax.jit(act)
