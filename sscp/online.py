"""The online phase's two halves: environments stepped on the host (one per run, with autoreset and episode
bookkeeping, saved and restored for exact resume) and the jitted device call made once per env step (add the
transitions to the replay buffers, `utd` updates vmapped over runs, the next actions)."""

import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sscp import env_state
from sscp.data.dataset import OfflineData
from sscp.data.replay import OnlineSource, ReplayBuffer
from sscp.envs import make_env
from sscp.errors import ConfigError

PROBE_STATES, PROBE_DRAWS = 16, 32  # the train/action_std diagnostic: states, and noise draws per state


def collect_action(agent, obs: jax.Array, key: jax.Array) -> jax.Array:
    """Returns the action an agent takes while collecting data: its explore_actions (sample_actions unless the agent
    explores otherwise: SAC samples its stochastic policy; SSCP has its exploration options)."""
    return agent.explore_actions(obs, key)


def used_leaves(fn: Callable, *args) -> list[bool]:
    """Returns, for each leaf of args (flattened in order), whether fn(*args) reads it: a leaf that no operation of
    fn's traced program takes as an input, and no output is, cannot change its result. Conservative: a leaf handed
    to an inner call counts as read."""
    closed = jax.make_jaxpr(fn)(*args)
    read = {id(v) for eqn in closed.jaxpr.eqns for v in eqn.invars}
    read |= {id(v) for v in closed.jaxpr.outvars}
    return [id(v) in read for v in closed.jaxpr.invars]


class HostCopy:
    """A CPU copy of the agents for acting on the host (--env-steps-per-call K > 1), refreshed after every chunk.

    A refresh moves only the leaves the collecting policy reads (for SSCP the EMA actor: 3.7 of 40.7 MB per run at
    4 x 512; for SAC the actor: 0.3 of 3.2 MB); the others keep the values of the first, full copy, which acting never
    reads. The actions are those of a full copy."""

    def __init__(self, cpu, act: Callable, *example_args):
        self.cpu = cpu
        self.act = act
        self.example_args = example_args
        self.agents = None
        self.mask: list[bool] | None = None

    def refresh(self, agents) -> None:
        """Copies agents (or the leaves acting reads) to the host."""
        if self.agents is None:
            self.agents = jax.block_until_ready(jax.device_put(agents, self.cpu, may_alias=False))
            self.mask = used_leaves(self.act, agents, *self.example_args)[: len(jax.tree.leaves(agents))]
            return
        leaves, treedef = jax.tree.flatten(agents)
        read = [x for x, m in zip(leaves, self.mask, strict=True) if m]
        moved = iter(jax.device_put(read, self.cpu, may_alias=False))
        old = jax.tree.leaves(self.agents)
        self.agents = treedef.unflatten([next(moved) if m else o for o, m in zip(old, self.mask, strict=True)])
        jax.block_until_ready(self.agents)  # copied before the device arrays are donated to the next call


class OnlineEnvs:
    """One environment per run, stepped in this process in lockstep (a MuJoCo step takes tens of µs; a worker
    process would cost more in IPC), with autoreset and the bookkeeping of the episodes in progress."""

    def __init__(self, names: list[str], seeds: list[int], trace: bool = False):
        """trace: keep each run's episode in progress and its last finished one (observations, actions, rewards), for
        the online phase's check of Q against Monte-Carlo returns; off, stepping keeps only the episodes' sums."""
        self.names = names
        self.seeds = seeds
        self.envs = [make_env(name) for name in names]
        self.obs_dim, self.action_dim = _shared_shapes(self.envs, names)
        self.episode_return = np.zeros(len(names))
        self.episode_length = np.zeros(len(names), np.int64)
        self.obs = np.zeros((len(names), self.obs_dim), np.float32)
        self.finished: list[list[tuple[float, int, float]]] = [[] for _ in names]  # (return, length, success)
        # with trace: the episode in progress, [(observation, action, reward)] per run, and the last finished one,
        # (observations, actions, rewards, terminated); checkpoints keep both, so a resumed run checks the same
        self.tracing = trace
        self.trace: list[list[tuple]] = [[] for _ in names]
        self.last_episode: list[tuple | None] = [None] * len(names)

    def reset(self) -> None:
        """Starts the first episode of every env, seeded by its run's (seed, task). NumPy's global RNG is seeded
        too: OGBench's maze envs draw their reset noise from it, so without a seed no two runs would agree."""
        np.random.seed(np.random.SeedSequence(self.seeds).generate_state(1)[0])
        for i, env in enumerate(self.envs):
            self.obs[i] = env.reset(seed=self.seeds[i])[0]

    def step(self, actions: np.ndarray) -> dict:
        """Returns the transitions of one step of every env (masks = 1 − terminated, so a time-limit truncation
        bootstraps; next_observations is the episode's last observation, not the next episode's first), after
        starting a new episode in every env whose episode ended."""
        n = len(self.envs)
        rewards, masks = np.zeros(n, np.float32), np.ones(n, np.float32)
        next_obs = np.zeros_like(self.obs)
        before = self.obs.copy()
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(actions[i])
            next_obs[i], rewards[i], masks[i] = obs, reward, 1.0 - float(terminated)
            if self.tracing:
                self.trace[i].append((before[i], np.asarray(actions[i], np.float32), float(reward)))
            self.episode_return[i] += float(reward)
            self.episode_length[i] += 1
            if terminated or truncated:
                success = float(info.get("success", 0.0))
                self.finished[i].append((float(self.episode_return[i]), int(self.episode_length[i]), success))
                if self.tracing:
                    obs_, acts, rews = (np.stack(x) for x in zip(*self.trace[i], strict=True))
                    self.last_episode[i], self.trace[i] = (obs_, acts, rews.astype(np.float64), bool(terminated)), []
                self.episode_return[i], self.episode_length[i] = 0.0, 0
                self.obs[i] = env.reset()[0]
            else:
                self.obs[i] = obs
        return {"observations": before, "actions": actions, "rewards": rewards, "masks": masks,
                "next_observations": next_obs}  # fmt: skip

    def pop_finished(self, run: int) -> dict:
        """Returns mean return, length, success and the count of run's episodes finished since the last call."""
        done, self.finished[run] = self.finished[run], []
        if not done:
            return {"episode/return": float("nan"), "episode/length": float("nan"),
                    "episode/success": float("nan"), "episode/count": 0}  # fmt: skip
        r, length, s = (float(np.mean(x)) for x in zip(*done, strict=True))
        return {"episode/return": r, "episode/length": length, "episode/success": s, "episode/count": len(done)}

    # ---- checkpoints -----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        """Returns what resuming needs: the envs' snapshots (None where a snapshot would not resume exactly), the
        current observations, the episodes in progress and NumPy's global RNG (which some OGBench envs use)."""
        snapshots = []
        for env, name in zip(self.envs, self.names, strict=True):
            exact, _ = env_state.is_exact(name)
            snapshots.append(env_state.snapshot(env) if exact else None)
        state = {
            "envs": snapshots,
            "obs": self.obs.copy(),
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
            "numpy_global": np.random.get_state(legacy=False),
        }
        if self.tracing:
            state["traces"] = [self._pack(run) for run in range(len(self.names))]
        return state

    def _pack(self, run: int) -> dict:
        """Returns the run's episode in progress and last finished one as arrays (for checkpoints)."""
        obs = np.zeros((0, self.obs_dim), np.float32)
        acts = np.zeros((0, self.action_dim), np.float32)
        if self.trace[run]:
            obs, acts = np.stack([x[0] for x in self.trace[run]]), np.stack([x[1] for x in self.trace[run]])
        rewards = np.array([x[2] for x in self.trace[run]], np.float64)
        last = self.last_episode[run]
        packed = {"obs": obs, "actions": acts, "rewards": rewards}
        if last is not None:
            packed.update(last_obs=last[0], last_actions=last[1], last_rewards=last[2], last_terminated=int(last[3]))
        return packed

    def restore(self, saved: dict, env_steps: int) -> list[int]:
        """Restores what state() saved; returns the runs whose episode had to be restarted instead (with a warning),
        which makes the resume inexact."""
        self.reset()  # a fresh env is reset once before its state is put back
        self.obs[:] = saved["obs"]
        self.episode_return[:] = saved["episode_return"]
        self.trace = [[] for _ in self.names]  # checkpoints without traces: the check starts with the next episode
        for run, packed in enumerate(saved.get("traces", [])):
            self.trace[run] = list(zip(packed["obs"], packed["actions"], packed["rewards"].tolist(), strict=True))
            if "last_obs" in packed:
                last = (
                    packed["last_obs"],
                    packed["last_actions"],
                    packed["last_rewards"],
                    bool(packed["last_terminated"]),
                )
                self.last_episode[run] = last
        self.episode_length[:] = saved["episode_length"]
        restarted = []
        for i, (env, blob) in enumerate(zip(self.envs, saved["envs"], strict=True)):
            why = "its environment cannot be saved exactly (" + env_state.is_exact(self.names[i])[1] + ")"
            if blob is not None:
                try:
                    env_state.restore(env, bytes(blob))
                    continue
                except env_state.SnapshotError as e:
                    why = f"its saved environment state does not load ({e})"
            print(
                f"warning: run {i} ({self.names[i]}): {why}; the episode in progress restarts, so this resume is "
                "not exact",
                file=sys.stderr,
            )
            restarted.append(i)
            self.obs[i] = env.reset(seed=self.seeds[i] + 7919 * env_steps)[0]
            self.episode_return[i], self.episode_length[i], self.trace[i] = 0.0, 0, []
        np.random.set_state(saved["numpy_global"])
        return restarted

    def close(self) -> None:
        """Closes every env."""
        for env in self.envs:
            env.close()


def env_shapes(names: list[str]) -> tuple[int, int]:
    """Returns (observation size, action size) shared by the env ids (each built once), or a ConfigError."""
    distinct = list(dict.fromkeys(names))
    envs = [make_env(name) for name in distinct]
    try:
        return _shared_shapes(envs, distinct)
    finally:
        for env in envs:
            env.close()


def _shared_shapes(envs: list, names: list[str]) -> tuple[int, int]:
    first = (_shape(envs[0].observation_space, names[0]), _shape(envs[0].action_space, names[0]))
    for env, name in zip(envs, names, strict=True):
        shapes = (_shape(env.observation_space, name), _shape(env.action_space, name))
        if shapes != first:
            raise ConfigError(
                f"{name} observes {shapes[0]} numbers and acts with {shapes[1]}, {names[0]} with {first[0]} and "
                f"{first[1]}; runs trained together (vmapped) need the same sizes: start one process per environment"
            )
    return first


def _shape(space, name: str) -> int:
    if len(space.shape or ()) != 1:
        raise ConfigError(f"{name}: sscp's online loop needs flat (1-D) observations and actions, got {space}")
    return int(space.shape[0])


def next_actions(agents, obs: jax.Array, act_keys: jax.Array, env_step: jax.Array, random_steps: int, action_dim: int):
    """Returns every run's action for its env step number env_step (counted from 0): uniform in [−1, 1] while
    env_step < random_steps, else the collecting policy's. Keys are fold_in(act_keys[run], env_step): stateless, so
    a resumed run draws the same noise."""
    keys = jax.vmap(lambda k: jax.random.fold_in(k, env_step))(act_keys)
    policy = jax.vmap(collect_action)(agents, obs, keys)
    if random_steps == 0:
        return policy
    uniform = jax.vmap(lambda k: jax.random.uniform(k, (action_dim,), minval=-1.0, maxval=1.0))(keys)
    return jnp.where(env_step < random_steps, uniform, policy)


def _add_and_learn(step_fn: Callable, utd: int, policy: str, learn: bool):
    """Returns add(agents, buffers, tasks, offline, transitions) -> (agents, buffers, info): each run's transition
    added to its buffer, then (learn) `utd` vmapped updates on batches of the run's OnlineSource (info [utd, runs])."""

    def add(agents, buffers, tasks, offline: OfflineData | None, transitions):
        buffers = jax.vmap(ReplayBuffer.add)(buffers, transitions)
        info = {}
        if learn:

            def one(agent, task, buffer):
                return step_fn(agent, task, OnlineSource(buffer, offline, policy))

            def body(carry, _):
                return jax.vmap(one)(carry, tasks, buffers)

            agents, info = jax.lax.scan(body, agents, None, length=utd)
        return agents, buffers, info

    return add


def make_online_step(step_fn: Callable, utd: int, policy: str, learn: bool, random_steps: int, action_dim: int):
    """Returns the jitted call made once per env step:
    step(agents, buffers, tasks, offline, transitions, obs, act_keys, env_step) -> (agents, buffers, actions, info).

    It adds each run's transition to its buffer, then (learn) makes `utd` vmapped updates on batches of the run's
    OnlineSource, then returns next_actions for env step env_step. Agents and buffers are donated: the buffers are
    written in place, not copied every step.
    """
    add = _add_and_learn(step_fn, utd, policy, learn)

    def online_step(agents, buffers, tasks, offline: OfflineData | None, transitions, obs, act_keys, env_step):
        agents, buffers, info = add(agents, buffers, tasks, offline, transitions)
        actions = next_actions(agents, obs, act_keys, env_step, random_steps, action_dim)
        return agents, buffers, actions, info

    return jax.jit(online_step, donate_argnums=(0, 1))


def make_online_steps_call(step_fn: Callable, utd: int, policy: str, learn: bool):
    """Returns the jitted call made once per K env steps when the host acts (--env-steps-per-call K):
    chunk(agents, buffers, tasks, offline, transitions) -> (agents, buffers, info), transitions stacked [K, runs, ...].

    For each of the K transitions in order it adds the transition to each run's buffer, then (learn) makes `utd`
    vmapped updates: the same updates, with the same random draws, as K calls of make_online_step (update i samples
    from the transitions up to i). info is stacked [K * utd, runs]. Agents and buffers are donated."""
    add = _add_and_learn(step_fn, utd, policy, learn)

    def steps_call(agents, buffers, tasks, offline: OfflineData | None, transitions):
        def env_step(carry, transition):
            agents, buffers, info = add(*carry, tasks, offline, transition)
            return (agents, buffers), info

        (agents, buffers), info = jax.lax.scan(env_step, (agents, buffers), transitions)
        return agents, buffers, jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), info)

    return jax.jit(steps_call, donate_argnums=(0, 1))


def make_action_std(policy: str):
    """Returns the jitted diagnostic std(agents, buffers, tasks, offline, key) -> [runs]: the std of the collecting
    policy's actions over PROBE_DRAWS noise draws, averaged over action dimensions and PROBE_STATES states from the
    run's own batches. Near 0, the policy acts deterministically and explores only through the states it visits."""

    def action_std(agents, buffers, tasks, offline, key):
        def one(agent, task, buffer, k):
            state_key, noise_key = jax.random.split(k)
            obs = OnlineSource(buffer, offline, policy).sample(state_key, PROBE_STATES, task)["observations"]
            draws = jax.vmap(lambda kk: collect_action(agent, obs, kk))(jax.random.split(noise_key, PROBE_DRAWS))
            return draws.std(axis=0).mean()

        return jax.vmap(one)(agents, tasks, buffers, jax.random.split(key, tasks.shape[0]))

    return jax.jit(action_std)


def example_batch(obs_dim: int, action_dim: int) -> dict:
    """Returns a one-transition batch of zeros, for shaping networks when there is no dataset."""
    obs = jnp.zeros((1, obs_dim), jnp.float32)
    return {
        "observations": obs,
        "actions": jnp.zeros((1, action_dim), jnp.float32),
        "rewards": jnp.zeros((1,), jnp.float32),
        "masks": jnp.ones((1,), jnp.float32),
        "next_observations": obs,
    }


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """Returns G_t = sum_k discount^k r_{t+k} for every step t of an episode's rewards."""
    out = np.zeros(len(rewards))
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + discount * running
        out[t] = running
    return out


def value_check_states(length: int, terminated: bool, discount: float) -> int:
    """Returns how many of an episode's first states have a Monte-Carlo return that is a fair target for Q: all of
    them when the episode terminated; otherwise (cut by the time limit, where Q bootstraps) those at least
    3 / (1 − discount) steps before the cut, whose missing tail weighs at most e^-3 ≈ 5 %."""
    if terminated or discount == 0.0:
        return length
    return max(length - int(np.ceil(3.0 / (1.0 - discount))), 0)
