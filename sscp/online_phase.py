"""The online phase of a training process (docs/online.md): every run's env stepped on the host, one jitted device
call per env step (or per chunk of env steps, acting on the host), online.csv rows, and evaluation and checkpoints
on the trainer's schedule. Its state (buffers, envs, next actions) goes into the trainer's checkpoints."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from sscp.agents.base import Agent
from sscp.data.replay import OnlineSource, ReplayBuffer
from sscp.online import (
    HostCopy,
    OnlineEnvs,
    discounted_returns,
    make_action_std,
    make_online_step,
    make_online_steps_call,
    next_actions,
    value_check_states,
)
from sscp.train_config import Run


class OnlinePhase:
    """The online phase of a Trainer: env steps on the host, one jitted device call per env step, online.csv rows
    every log_every env steps, evaluation and checkpoints on the trainer's schedule."""

    def __init__(self, trainer, saved: dict | None = None):
        """trainer: the sscp.train.Trainer whose agents, data, logs and schedule the phase uses; saved: the online
        part of the checkpoint the trainer resumed from (state()), or None for a fresh start."""
        self.t = trainer
        cfg, runs = trainer.cfg, trainer.runs
        # the check of Q against Monte-Carlo returns, for agents with a Q critic (q_values) and so a discount
        self.checks_value = trainer.agent_cls.q_values is not Agent.q_values
        self.envs = OnlineEnvs([r.env_name for r in runs], [_env_seed(r) for r in runs], trace=self.checks_value)
        self.buffers = ReplayBuffer.create(cfg.buffer_size, trainer.obs_dim, trainer.action_dim, runs=len(runs))
        self.act_keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(r.seed), 7_000 + r.task) for r in runs])
        self.calls: dict[bool, object] = {}
        self.first_actions = jax.jit(next_actions, static_argnums=(4, 5))
        # --env-steps-per-call K > 1: the host acts with a CPU copy of the agents, refreshed after every chunk's call
        self.cpu = jax.devices("cpu")[0]
        self.host_keys = jax.device_put(self.act_keys, self.cpu)

        def act(agents, obs, keys):  # what the host runs (_host_actions), unjitted: a jit would hide what it reads
            return next_actions(agents, obs, keys, jnp.int32(0), cfg.random_steps, trainer.action_dim)

        self.host = HostCopy(self.cpu, act, jnp.zeros((len(runs), trainer.obs_dim)), self.host_keys)
        self.chunk_calls: dict[bool, object] = {}
        self.action_std = make_action_std(cfg.online_buffer)
        self.q_values = jax.jit(lambda agents, r, obs, acts: jax.tree.map(lambda x: x[r], agents).q_values(obs, acts))
        one = jax.tree.map(lambda x: x[0], (trainer.agents, self.buffers))
        shapes = jax.eval_shape(
            lambda a, b: trainer.step_fn(a, trainer.tasks[0], OnlineSource(b, trainer.data, cfg.online_buffer)), *one
        )
        self.info_keys = list(shapes[1])
        if saved is None:
            self.envs.reset()
            self.actions = self._first_actions()
        else:
            self.buffers = self.buffers.from_host(saved["buffer"])
            restarted = self.envs.restore(saved, trainer.env_steps)
            self.actions = self._first_actions() if restarted else np.asarray(saved["actions"], np.float32)

    def _first_actions(self) -> np.ndarray:
        return self._actions_from(self.t.agents, jnp.asarray(self.envs.obs), self.act_keys)

    def _actions_from(self, agents, obs: jax.Array, keys: jax.Array) -> np.ndarray:
        """Returns next_actions for the envs' next step from these agents, where the arrays live (device or host)."""
        t = self.t
        return np.asarray(self.first_actions(agents, obs, keys, t.env_steps, t.cfg.random_steps, t.action_dim))

    def _call(self, learn: bool):
        if learn not in self.calls:
            t = self.t
            self.calls[learn] = make_online_step(
                t.step_fn, t.cfg.utd, t.cfg.online_buffer, learn, t.cfg.random_steps, t.action_dim
            )
        return self.calls[learn]

    def state(self) -> dict:
        """Returns the online part of a checkpoint: buffers, next actions, envs and episodes in progress."""
        return {"buffer": self.buffers.to_host(), "actions": self.actions.copy(), **self.envs.state()}

    def run(self, bar) -> list[dict]:
        """Steps every run's env until cfg.online_steps; returns the last evaluation (empty if none ran)."""
        t, cfg = self.t, self.t.cfg
        results: list[dict] = []
        while t.env_steps < cfg.online_steps:
            n = min(cfg.log_every, cfg.online_steps - t.env_steps)
            start_step = t.env_steps
            start = time.perf_counter()
            infos, env_s, device_s, copy_s = self._steps(n)
            seconds = time.perf_counter() - start
            t.elapsed += seconds
            info = {k: np.concatenate([i[k] for i in infos]) for k in self.info_keys} if infos else {}
            first_learning = max(start_step, cfg.random_steps)
            t.check_finite(info, first_learning, per_step=cfg.utd, unit="env step")
            std = np.asarray(self.action_std(t.agents, self.buffers, t.tasks, t.data, jax.random.PRNGKey(t.total_step)))
            self._log(info, std, n, seconds, env_s, device_s, copy_s)
            bar.update(n)
            bar.set_postfix({"env steps/s": f"{n / seconds:.0f}", "device": f"{device_s / seconds:.0%}"})
            done = t.env_steps >= cfg.online_steps
            if done or (cfg.eval_every and t.env_steps % cfg.eval_every < n):
                results = t.evaluate_and_plot(bar)
            if done or (cfg.save_every and t.env_steps % cfg.save_every < n):
                t.save()
        return results

    def _steps(self, n: int) -> tuple[list[dict], float, float, float]:
        """Takes n env steps, each followed by one device call; returns the updates' infos, the seconds spent
        stepping envs and in device calls (with the transfer of the actions), and (chunks only) the seconds of
        those spent refreshing the host's copy of the agents."""
        t, cfg = self.t, self.t.cfg
        if cfg.env_steps_per_call > 1:
            return self._chunked_steps(n)
        infos, env_s, device_s = [], 0.0, 0.0
        for _ in range(n):
            t0 = time.perf_counter()
            transitions = self.envs.step(self.actions)
            t1 = time.perf_counter()
            t.env_steps += 1
            learn = t.env_steps > cfg.random_steps  # no updates in the random phase (CleanRL's learning_starts)
            t.agents, self.buffers, actions, info = self._call(learn)(
                t.agents, self.buffers, t.tasks, t.data, transitions, self.envs.obs, self.act_keys, t.env_steps
            )
            self.actions, info = jax.device_get((actions, info))
            device_s += time.perf_counter() - t1
            env_s += t1 - t0
            if learn:
                infos.append(info)
        return infos, env_s, device_s, 0.0

    def _host_actions(self) -> np.ndarray:
        """Returns the next actions, computed on the host CPU from the copy of the agents (next_actions' keys)."""
        return self._actions_from(self.host.agents, jax.device_put(self.envs.obs, self.cpu), self.host_keys)

    def _chunked_steps(self, n: int) -> tuple[list[dict], float, float, float]:
        """Takes n env steps in chunks of up to env_steps_per_call (a chunk never straddles the end of the random
        phase): the host acts for a whole chunk with its copy of the agents, then one device call adds the chunk's
        transitions and makes its updates. Without --online-overlap the host waits for that call and refreshes its
        copy, so a chunk acts with the agents as of its start; with it, the host acts for the next chunk while the
        call runs, with the copy from before the call, and refreshes it once that chunk is taken (the last call of the
        n steps is always waited for, so every log row, evaluation and checkpoint sees settled agents). Returns the
        infos and the seconds in envs (with host acting), waiting for device calls (with refreshing the host's copy of
        the agents) and, of those, in the refresh."""
        t, cfg = self.t, self.t.cfg
        timing = {"env": 0.0, "device": 0.0, "copy": 0.0}
        infos: list[dict] = []
        if self.host.agents is None:
            self.host.refresh(t.agents)
        end = t.env_steps + n
        pending = None  # --online-overlap: (info, learn) of the call still running
        while t.env_steps < end:
            k = min(cfg.env_steps_per_call, end - t.env_steps)
            if t.env_steps < cfg.random_steps:
                k = min(k, cfg.random_steps - t.env_steps)
            learn = t.env_steps + 1 > cfg.random_steps  # as _steps: no updates in the random phase
            t0 = time.perf_counter()
            chunk = []
            for i in range(k):
                chunk.append(self.envs.step(self.actions))
                t.env_steps += 1
                if i < k - 1:
                    self.actions = self._host_actions()
            transitions = {key: np.stack([c[key] for c in chunk]) for key in chunk[0]}
            timing["env"] += time.perf_counter() - t0
            if pending is not None:
                self._settle(*pending, infos, timing)
            t1 = time.perf_counter()
            t.agents, self.buffers, info = self._chunk_call(learn)(t.agents, self.buffers, t.tasks, t.data, transitions)
            timing["device"] += time.perf_counter() - t1  # the dispatch; _settle adds the wait
            pending = (info, learn)
            if not cfg.online_overlap or t.env_steps >= end:
                self._settle(*pending, infos, timing)
                pending = None
            t2 = time.perf_counter()
            self.actions = self._host_actions()
            timing["env"] += time.perf_counter() - t2
        return infos, timing["env"], timing["device"], timing["copy"]

    def _settle(self, info: dict, learn: bool, infos: list[dict], timing: dict) -> None:
        """Waits for the chunk call that returned info, refreshes the host's copy of the agents (only if it
        learned: the random phase leaves them as they are) and keeps its info."""
        t1 = time.perf_counter()
        jax.block_until_ready(self.t.agents)
        t_copy = time.perf_counter()
        if learn:
            self.host.refresh(self.t.agents)  # only the leaves acting reads
        timing["copy"] += time.perf_counter() - t_copy
        info = jax.device_get(info)
        timing["device"] += time.perf_counter() - t1
        if learn:
            infos.append(info)

    def _chunk_call(self, learn: bool):
        if learn not in self.chunk_calls:
            t = self.t
            self.chunk_calls[learn] = make_online_steps_call(t.step_fn, t.cfg.utd, t.cfg.online_buffer, learn)
        return self.chunk_calls[learn]

    def _log(
        self, info: dict, std: np.ndarray, n: int, seconds: float, env_s: float, device_s: float, copy_s: float
    ) -> None:
        t = self.t
        updates = next(iter(info.values())).shape[0] if info else 0
        for r in t.runs:
            row = {"step": t.total_step, "env_steps": t.env_steps, "run": r.index, "task": r.dataset, "seed": r.seed}
            kept = info["skipped"][:, r.index] == 0 if "skipped" in info else slice(None)
            for k in self.info_keys:
                values = info[k][:, r.index] if k == "skipped" else info[k][kept, r.index] if info else np.zeros(0)
                row[f"train/{k}"] = float(np.mean(values)) if values.size else float("nan")
            row["train/action_std"] = float(std[r.index])
            row.update(self.envs.pop_finished(r.index))
            if self.checks_value:
                row.update(self._value_check(r.index))
            row["time/env_steps_per_sec"] = n / seconds
            row["time/updates_per_sec"] = updates / seconds
            row["time/env_ms_per_step"] = 1e3 * env_s / n
            row["time/device_ms_per_step"] = 1e3 * device_s / n
            row["time/copy_ms_per_step"] = 1e3 * copy_s / n
            row["time/elapsed_s"] = t.elapsed
            t.folder.online_log.log(row)

    def _value_check(self, run: int) -> dict:
        """Returns Q against the truth on the run's last finished episode (then forgets it): the mean of the critic's
        Q(s, a) over its visited states (value_check_states of them) and the mean of their discounted Monte-Carlo
        returns; NaN when no episode finished since the last row. Q far above the returns is overestimation."""
        episode, self.envs.last_episode[run] = self.envs.last_episode[run], None
        nan = {"value/q_visited": float("nan"), "value/mc_return_visited": float("nan")}
        if episode is None:
            return nan
        obs, actions, rewards, terminated = episode
        discount = self.t.agent_cfg.discount
        n = value_check_states(len(rewards), terminated, discount)
        if n == 0:
            return nan
        size = -(-n // 256) * 256  # padded to a multiple of 256: few distinct shapes to compile
        pad = ((0, size - n), (0, 0))
        q = self.q_values(self.t.agents, run, jnp.asarray(np.pad(obs[:n], pad)), jnp.asarray(np.pad(actions[:n], pad)))
        returns = discounted_returns(rewards, discount)[:n]
        return {"value/q_visited": float(np.mean(np.asarray(q)[:n])), "value/mc_return_visited": float(returns.mean())}

    def close(self) -> None:
        """Closes the envs."""
        self.envs.close()


def _env_seed(run: Run) -> int:
    """Returns the seed of a run's first episode: a function of (seed, task) only, so a run trained alone or with
    others sees the same episodes."""
    return int(np.random.SeedSequence([run.seed, run.task, 1]).generate_state(1)[0])
