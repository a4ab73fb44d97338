"""The training loop: data on the device, K updates per jitted lax.scan call, runs (tasks × seeds) vmapped in one
process, periodic evaluation, CSV logs, atomic checkpoints and exact resume; then, if asked, the online phase
(sscp.online_phase, docs/online.md). The options are sscp.train_config's, the jitted pieces sscp.steps', the files
sscp.run_folder's."""

import dataclasses
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sscp.agents import get_agent, is_goal_conditioned
from sscp.agents.base import PresetConfig
from sscp.data import registry
from sscp.data.chunks import ChunkedData
from sscp.data.dataset import OfflineData, load_offline_data
from sscp.data.goals import GoalData, load_goal_data
from sscp.envs import EnvPool, eval_goal_count, normalized_score
from sscp.errors import ConfigError, DivergenceError
from sscp.evaluate import ChunkedActor, evaluate
from sscp.online import env_shapes, example_batch
from sscp.online_phase import OnlinePhase
from sscp.plot import plot_run
from sscp.report import evaluation_line
from sscp.run_folder import CURVES, RunFolder, provenance
from sscp.runlog import Trackers
from sscp.steps import init_agents, make_act_fn, make_step_fn, make_update_scan, place_data, place_runs, run_sharding
from sscp.train_config import Run, TrainConfig, check, default_run_dir, resolve

__all__ = ["Run", "TrainConfig", "Trainer"]


def default_eval_slots(workers: int) -> int:
    """Returns the envs stepped side by side when --eval-slots is 0: twice the workers (at least 4) on a CPU, where a
    policy call is cheap and building envs dominates; eight per worker (at least 16) on an accelerator, where each
    lockstep step waits for a policy call on a device that a sweep's other processes keep busy, so fewer, larger
    calls finish sooner (docs/reliability.md, "--eval-slots"). Results do not depend on it."""
    return max(4, 2 * workers) if jax.default_backend() == "cpu" else max(16, 8 * workers)


class Trainer:
    """Owns one training process: data, vmapped agents, run folder (logs, checkpoints), evaluation."""

    def __init__(self, cfg: TrainConfig, agent_overrides: dict | None = None, example_shapes: dict | None = None):
        """example_shapes (config.json's, see config_record): build the agents from these batch shapes without
        loading the dataset, as `sscp eval` and `sscp export` do to restore a policy; such a trainer evaluates and
        exports but does not train."""
        self.agent_cls, config_cls = get_agent(cfg.agent)
        try:
            self.agent_cfg = config_cls(**(agent_overrides or {}))
        except TypeError as e:
            raise ConfigError(f"bad agent option for {cfg.agent}: {e}") from None
        cfg = resolve(cfg)
        self.goal_conditioned = is_goal_conditioned(cfg.agent)
        self.preset_note = self._apply_preset(cfg, set(agent_overrides or {}))
        check(cfg, self.agent_cfg)
        self.online_cfg = self.agent_cfg.for_online(cfg.online_agent, cfg.agent) if cfg.online_agent else None
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        self.chunking = None if self.agent_cfg.chunking() == (1, 1, 1) else self.agent_cfg.chunking()
        self.data = self._load_data() if example_shapes is None else None
        self.runs = self._make_runs()
        if cfg.online_steps and self.no_env is not None:
            raise ConfigError(f"--online-steps acts in the dataset's environment, and there is none: {self.no_env}")
        # why training does not evaluate the runs, or None
        self.no_eval = "--eval-episodes 0 asks for none" if cfg.eval_episodes == 0 else self.no_env
        if cfg.online_steps:  # before any training: the envs exist and fit the data
            self._check_env_shapes()
        if example_shapes is not None:
            example = {k: jnp.zeros((1, *shape), dtype) for k, (shape, dtype) in example_shapes.items()}
        elif self.data is not None:
            example = self.data.example_batch()
        else:
            example = example_batch(self.obs_dim, self.action_dim)
        self.example_shapes = {k: [list(v.shape[1:]), str(v.dtype)] for k, v in example.items()}
        if not cfg.online_steps:  # online runs take them from their envs (_check_env_shapes)
            self.obs_dim = int(example["observations"].shape[-1])
            self.action_dim = int(example["actions"].shape[-1]) // (self.chunking[0] if self.chunking else 1)
        self.sharding = run_sharding(len(self.runs), cfg.devices)
        agents = init_agents(self.agent_cls, self.agent_cfg, example, [r.seed for r in self.runs])
        self.agents = place_runs(agents, self.sharding)
        self.tasks = place_runs(jnp.array([r.task for r in self.runs]), self.sharding)
        self.data = place_data(self.data, self.sharding)
        self.step_fn = make_step_fn(self.agent_cfg.batch_size, cfg.on_nonfinite == "skip")
        self.update_scan = make_update_scan(self.step_fn, cfg.scan_unroll)
        self.act = make_act_fn()
        self.trackers = None
        if cfg.tensorboard or cfg.wandb:
            self.trackers = Trackers(
                self.run_dir, cfg.tensorboard, cfg.wandb, cfg.wandb_mode, cfg.wandb_project, self.config_record()
            )
        self.folder = RunFolder(self.run_dir, self.trackers)
        self.step = 0  # offline gradient steps
        self.env_steps = 0  # online environment steps per run
        self.elapsed = 0.0
        self.online: OnlinePhase | None = None
        self._saved_online: dict | None = None

    def _apply_preset(self, cfg: TrainConfig, explicit: set[str]) -> str | None:
        """Applies the dataset's preset to the agent options not given explicitly; returns the line a run prints
        about it, or None."""
        if self.goal_conditioned:
            self.agent_cfg = self.agent_cfg.with_preset(cfg.dataset[0], explicit)
            return None
        names = cfg.dataset or cfg.env  # online from scratch: the env ids stand for the datasets
        if not (isinstance(self.agent_cfg, PresetConfig) and names):
            return None
        asked = self.agent_cfg.preset
        self.agent_cfg = self.agent_cfg.with_preset(names, explicit)
        if asked == "auto" and self.agent_cfg.preset == "none":
            return self.agent_cfg.no_preset_note(names)
        warning = self.agent_cfg.offline_warning() if cfg.dataset and cfg.steps > 0 else None
        return "\n".join(filter(None, [self.agent_cfg.preset_note(), warning])) or None

    def _load_data(self) -> OfflineData | ChunkedData | GoalData | None:
        """Returns the dataset on the host (None online from scratch), with action chunks or observation histories
        where the agent asks for them (self.chunking: (H, n, m) or None, docs/behaviour_cloning.md)."""
        cfg = self.cfg
        data = None
        if cfg.dataset and self.goal_conditioned:
            data = load_goal_data(
                cfg.dataset[0], self.agent_cfg.sampling(), cfg.data_dir, cfg.make_data, cfg.data_episodes
            )
        elif cfg.dataset:
            data = load_offline_data(
                cfg.dataset, cfg.data_dir, cfg.make_data, cfg.data_episodes, need_env=cfg.eval_episodes > 0
            )
        if self.chunking is not None:
            if cfg.online_steps or data is None:
                raise ConfigError("action chunks and observation histories are offline only: drop --online-steps")
            data = ChunkedData.wrap(data, self.chunking[0], self.chunking[2], ", ".join(cfg.dataset))
        if data is not None:
            smallest = getattr(data, "smallest_task", data.size)
            if self.agent_cfg.batch_size > smallest:
                raise ConfigError(
                    f"--agent.batch-size {self.agent_cfg.batch_size} is larger than the dataset ({smallest} "
                    "transitions); lower it or use more data"
                )
            if cfg.online_steps and getattr(data, "task_rows", None) is not None:
                raise ConfigError(
                    f"--online-steps: {', '.join(cfg.dataset)} are different datasets, not single-task variants of "
                    "one; fine-tune each in its own run"
                )
        return data

    def _make_runs(self) -> list[Run]:
        """Returns one Run per (dataset or env, seed); sets what evaluates them (ref_scores, no_env, env_notes)."""
        cfg = self.cfg
        if cfg.dataset:
            specs = [registry.resolve(d, cfg.data_dir) for d in cfg.dataset]
            labels = cfg.dataset
            env_names = self.data.env_names if self.data is not None else tuple(s.env_name for s in specs)
            self.ref_scores = [s.ref_scores for s in specs]
            # why no environment evaluates the runs, or None: datasets without one (Robomimic) train unevaluated
            self.no_env = next((s.env_note for s in specs if s.env_name is None), None)
            # which environment a file's name chose, and how closely it matches the data (D4RL files)
            self.env_notes = [f"{s.train_path.name}: {s.env_note}" for s in specs if s.env_name and s.env_note]
        else:
            labels, env_names = cfg.env, cfg.env
            self.ref_scores = [None] * len(cfg.env)
            self.no_env = None
            self.env_notes = []
        return [
            Run(len(cfg.seeds) * t + i, t, s, labels[t], env_names[t])
            for t in range(len(labels))
            for i, s in enumerate(cfg.seeds)
        ]

    def _check_env_shapes(self) -> None:
        """Sets obs_dim and action_dim from the runs' envs, and checks that the dataset has the same sizes."""
        self.obs_dim, self.action_dim = env_shapes([r.env_name for r in self.runs])
        if self.data is not None:
            data_dims = (self.data.observations.shape[1], self.data.actions.shape[1])
            if data_dims != (self.obs_dim, self.action_dim):
                raise ConfigError(
                    f"{self.runs[0].env_name} observes {self.obs_dim} numbers and acts with {self.action_dim}, "
                    f"but the dataset has {data_dims[0]} and {data_dims[1]}"
                )

    @property
    def num_devices(self) -> int:
        """Returns how many devices the runs are spread over."""
        return 1 if self.sharding is None else self.sharding.mesh.size

    @property
    def total_step(self) -> int:
        """Returns offline gradient steps + online env steps: the step of logs, evaluations and checkpoints."""
        return self.step + self.env_steps

    # ---- run folder -------------------------------------------------------------------------------------------
    def config_record(self) -> dict:
        """Returns what config.json holds: the train config, the agent config and the runs."""
        return {
            "train": dataclasses.asdict(self.cfg),
            "agent": dataclasses.asdict(self.agent_cfg),
            "runs": [dataclasses.asdict(r) for r in self.runs],
            "example_shapes": self.example_shapes,  # a batch's shapes and dtypes: restoring needs no dataset
            "versions": {"jax": jax.__version__, "backend": jax.default_backend(), "devices": self.num_devices},
            "provenance": provenance(),
        }

    def prepare_run_dir(self) -> bool:
        """Creates or resumes the run folder; returns True when it resumed from a checkpoint."""
        record = self.config_record()
        restored = self.folder.open(record, self.agents, dataclasses.asdict(type(self.agent_cfg)()))
        if restored is None:
            return False
        total, agents, meta = restored
        self.agents = place_runs(agents, self.sharding)
        self.step = meta.get("offline_steps", total)
        self.env_steps = meta.get("env_steps", 0)
        self._saved_online = meta.get("online")
        self.elapsed = meta["elapsed"]
        return True

    def save(self) -> None:
        """Writes a checkpoint of all runs with the log positions it corresponds to; in the online phase also the
        replay buffers, the envs and the next actions (docs/online.md)."""
        meta = {"elapsed": self.elapsed}
        if self.cfg.online_steps:
            meta.update(offline_steps=self.step, env_steps=self.env_steps)
            if self.online is not None:
                meta["online"] = self.online.state()
        self.folder.save(self.total_step, self.agents, meta, self.cfg.keep_checkpoints, bool(self.cfg.online_steps))

    # ---- training ---------------------------------------------------------------------------------------------
    def _log_train(self, info: dict, seconds: float, n: int) -> None:
        host = jax.device_get(info)
        for r in self.runs:
            row = {"step": self.step, "run": r.index, "task": r.dataset, "seed": r.seed}
            # With on_nonfinite="skip", average only the updates that were applied (skipped ones hold NaN/inf).
            kept = host["skipped"][:, r.index] == 0 if "skipped" in host else slice(None)
            for k, v in host.items():
                values = v[:, r.index] if k == "skipped" else v[kept, r.index]
                row[f"train/{k}"] = float(np.mean(values)) if values.size else float("nan")
            row["time/updates_per_sec"] = n / seconds
            row["time/elapsed_s"] = self.elapsed
            self.folder.train_log.log(row)

    def check_finite(self, info: dict, start: int, per_step: int = 1, unit: str = "step") -> None:
        """Raises DivergenceError naming the earliest NaN/inf in info [updates, runs]; update i belongs to
        `unit` start + i // per_step + 1."""
        if self.cfg.on_nonfinite == "skip":
            return
        first = None  # (update index, run, key, value) of the earliest non-finite value over all quantities
        for k, v in jax.device_get(info).items():
            bad = ~np.isfinite(v)
            if bad.any():
                i, r = np.argwhere(bad)[0]  # row-major: the earliest update of this quantity
                if first is None or i < first[0]:
                    first = (i, r, k, v[i, r])
        if first is not None:
            i, r, k, value = first
            raise DivergenceError(
                f"{k} became {value} at {unit} {start + i // per_step + 1} (run {r}: {self.runs[r].dataset}, seed "
                f"{self.runs[r].seed}); the last good checkpoint in {self.run_dir / 'checkpoints'} is kept. "
                "Lower the learning rate, or pass --on-nonfinite skip"
            )

    def evaluate(self, episodes: int | None = None, workers: int | None = None, slots: int | None = None) -> list[dict]:
        """Returns one result dict per run after evaluating every run in its environment; goal-conditioned runs on
        each of the environment's evaluation goals, with success per goal (success_goalN) and overall."""
        if self.no_env is not None:
            raise ConfigError(f"{', '.join(self.cfg.dataset)} cannot be evaluated: {self.no_env}")
        episodes = episodes or self.cfg.eval_episodes
        workers = self.cfg.eval_workers if workers is None else workers
        if workers < 0:
            workers = os.cpu_count() or 1
        # One evaluation target per run, or per (run, goal) for goal-conditioned runs (task ids 1..goals).
        goals = eval_goal_count(self.runs[0].env_name) if self.goal_conditioned else 0
        target_run = np.array([r.index for r in self.runs for _ in range(max(goals, 1))])
        task_ids = [t + 1 for _ in self.runs for t in range(goals)] if goals else None
        slots = self.cfg.eval_slots if slots is None else slots
        slots = min(episodes * len(target_run), slots if slots > 0 else default_eval_slots(workers))
        pool = EnvPool(slots, workers)
        base_key = jax.random.PRNGKey(self.total_step)

        def act(targets, obs, episode_steps, goal_obs=None):
            goal_obs = None if goal_obs is None else jnp.asarray(goal_obs)
            ids = jnp.asarray(np.concatenate([targets[:, None], episode_steps], axis=1).astype(np.uint32))
            runs = jnp.asarray(target_run[targets])
            return np.asarray(self.act(self.agents, runs, jnp.asarray(obs), base_key, goal_obs, ids))

        if self.chunking is not None:
            act = ChunkedActor(act, self.action_dim, self.chunking[1], self.chunking[2])
        try:
            names = [self.runs[i].env_name for i in target_run]
            results = evaluate(
                act, names, episodes, pool, seed=self.total_step, max_steps=self.cfg.eval_max_steps, task_ids=task_ids
            )
        finally:
            pool.close()
        if goals:
            results = [_per_goal_summary(results[i * goals : (i + 1) * goals]) for i in range(len(self.runs))]
        if any(self.ref_scores):  # D4RL and Minari data with reference returns: D4RL's normalised score too
            for r, res in zip(self.runs, results, strict=True):
                res["normalized_return"] = normalized_score(res["return"], self.ref_scores[r.task])
        return results

    def _log_eval(self, results: list[dict], seconds: float) -> None:
        for r, res in zip(self.runs, results, strict=True):
            row = {"step": self.total_step, "run": r.index, "task": r.dataset, "seed": r.seed, "env": r.env_name}
            if self.cfg.online_steps:
                row["env_steps"] = self.env_steps
            row.update({f"eval/{k}": v for k, v in res.items()})
            row["time/eval_s"] = seconds
            self.folder.eval_log.log(row)

    def _unevaluated(self) -> list[dict]:
        """Returns NaN success, return and length per run: the results of runs that no environment evaluates."""
        return [dict.fromkeys(("success", "return", "length"), float("nan")) for _ in self.runs]

    def evaluate_and_plot(self, bar) -> list[dict]:
        if self.no_eval is not None:
            bar.write(f"step {self.total_step}: not evaluated")
            results = self._unevaluated()
        else:
            t0 = time.perf_counter()
            results = self.evaluate()
            self._log_eval(results, time.perf_counter() - t0)
            bar.write(f"step {self.total_step}: {evaluation_line(self.runs, results, bool(self.cfg.online_steps))}")
        if not self.cfg.plot:
            return results
        try:
            plot_run(self.run_dir)
        except OSError as e:  # the plot is a convenience: a full disk must not stop training here
            bar.write(f"warning: could not write {self.run_dir / CURVES}: {e.strerror or e}")
        return results

    def train(self) -> list[dict]:
        """Trains all runs for cfg.steps offline updates, then cfg.online_steps env steps, evaluating and saving on
        schedule; returns the final evaluation. Holds the run folder's lock meanwhile (checkpoint.run_lock)."""
        with self.folder.lock():
            return self._train()

    def _switch_agent(self, bar, step: int) -> None:
        """--online-agent: puts its options in place once the run reaches their offline update (--online-agent-at,
        else the online phase's start), a resumed run's too."""
        if self.online_cfg is None or self.agents.config == self.online_cfg:
            return
        at = self.cfg.steps if self.cfg.online_agent_at is None else self.cfg.online_agent_at
        if step < at:
            return
        self.agents = self.agents.replace(config=self.online_cfg)
        phase = "online phase" if at == self.cfg.steps and self.cfg.online_steps else f"offline update {at} on"
        bar.write(f"{phase} with {' '.join(self.cfg.online_agent)}")

    def _train(self) -> list[dict]:
        from tqdm import tqdm

        resumed = self.prepare_run_dir()
        if resumed:
            phase = f" (offline {self.step}, env steps {self.env_steps})" if self.cfg.online_steps else ""
            print(f"resuming {self.run_dir} from step {self.total_step}{phase}")
        for note in [*self.env_notes, self.preset_note or ""]:
            if note:
                print(note)
        if self.no_eval is not None:
            print(f"no evaluation: {self.no_eval}; train.csv and checkpoints are written as usual")
        cfg = self.cfg
        total = cfg.steps + cfg.online_steps
        bar = tqdm(total=total, initial=self.total_step, disable=not cfg.progress, unit="step", dynamic_ncols=True)
        results: list[dict] = []
        if self.step < cfg.steps:  # the first call compiles the update, and the bar shows nothing meanwhile
            bar.write(f"compiling the training step for {jax.default_backend()} (first call only; slowest on a CPU)")
        while self.step < cfg.steps:
            n = min(cfg.log_every, cfg.steps - self.step)
            self._switch_agent(bar, self.step)
            if cfg.online_agent_at is not None and self.step < cfg.online_agent_at:
                n = min(n, cfg.online_agent_at - self.step)  # a chunk ends where --online-agent-at switches
            start = time.perf_counter()
            self.agents, info = self.update_scan(self.agents, self.tasks, self.data, n)
            info = jax.device_get(info)  # the one host sync per chunk
            seconds = time.perf_counter() - start
            self.check_finite(info, self.step)
            self.step += n
            self.elapsed += seconds
            self._log_train(info, seconds, n)
            bar.update(n)
            bar.set_postfix({"upd/s": f"{n / seconds:.0f}", **{k: f"{np.mean(info[k]):.3g}" for k in list(info)[:3]}})
            done = self.step >= cfg.steps
            if done or (cfg.eval_every and self.step % cfg.eval_every < n):
                results = self.evaluate_and_plot(bar)
            if done or (cfg.save_every and self.step % cfg.save_every < n):
                self.save()
        if cfg.online_steps and self.env_steps < cfg.online_steps:
            self._switch_agent(bar, cfg.steps)
            saved, self._saved_online = self._saved_online, None
            self.online = OnlinePhase(self, saved)
            try:
                results = self.online.run(bar) or results
            finally:
                self.online.close()
        bar.close()
        if not results:  # a resumed run that had already finished
            results = self.evaluate() if self.no_eval is None else self._unevaluated()
        if self.trackers is not None:
            self.trackers.close()
        return results


def _per_goal_summary(results: list[dict]) -> dict:
    """Returns one run's mean success, return and length over its evaluation goals (each with the same number of
    episodes), and success_goalN per goal N."""
    summary = {k: float(np.mean([r[k] for r in results])) for k in ("success", "return", "length")}
    return {**summary, **{f"success_goal{i + 1}": r["success"] for i, r in enumerate(results)}}
