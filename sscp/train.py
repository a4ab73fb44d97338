"""The one training loop: data on the device, K updates per jitted lax.scan call, runs (tasks × seeds) vmapped in one
process, periodic evaluation, CSV logs, atomic checkpoints and exact resume."""

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from sscp import checkpoint
from sscp.agents import get_agent
from sscp.data.dataset import OfflineData, load_offline_data
from sscp.envs import EnvPool
from sscp.errors import ConfigError, DivergenceError
from sscp.evaluate import evaluate
from sscp.logging import CSVLogger


@dataclass(frozen=True)
class TrainConfig:
    """One training run: which agent, on which data, for how long, and how it is logged and saved."""

    agent: str = "sscp"
    """Agent name (see `sscp train --help` for the list)."""
    dataset: tuple[str, ...] = ("cube-single-play-singletask-task1-v0",)
    """Dataset name(s) or .npz path(s). Several single-task variants of one dataset train together, vmapped."""
    steps: int = 1_000_000
    """Gradient steps per run (1M is the FQL/OGBench convention)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds; every (dataset, seed) pair is one run, all trained at once in one process with vmap."""
    run_dir: str | None = None
    """Run folder; default runs/<dataset>/<agent>/<timestamp>. An existing run folder is resumed."""
    data_dir: str | None = None
    """Dataset cache folder (default $SSCP_DATA_DIR or ~/.cache/sscp/data)."""
    make_data: bool = False
    """Generate a missing dataset locally instead of failing."""
    data_episodes: int | None = None
    """With make_data: episodes to generate (default: the official size)."""
    log_every: int = 1000
    """Updates per jitted call; one train.csv row per run per call."""
    eval_every: int = 100_000
    """Evaluate every this many steps (and always at the end); 0 evaluates only at the end."""
    eval_episodes: int = 50
    """Episodes per run and evaluation."""
    eval_workers: int = -1
    """Processes stepping eval envs; -1 = one per CPU core, 0 = in this process."""
    eval_max_steps: int | None = None
    """Cap episode length in evaluation, for smoke tests (default: the environment's own limit, 200-1000 steps)."""
    save_every: int = 100_000
    """Checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep."""
    on_nonfinite: Literal["stop", "skip"] = "stop"
    """NaN/inf in a loss: stop with an error naming the step (keeping the last good checkpoint), or skip that update."""
    progress: bool = True
    """Show a progress bar."""
    scan_unroll: int = 1
    """Updates per loop iteration inside the jitted scan (a speed knob; the arithmetic is the same)."""
    matmul_precision: Literal["default", "float32", "tensorfloat32", "bfloat16"] = "default"
    """JAX matmul precision for float32 arrays ("default" is JAX's own choice for the device)."""


@dataclass
class Run:
    """One (task, seed) pair of a vmapped training process."""

    index: int
    task: int
    seed: int
    dataset: str
    env_name: str


def _check(cfg: TrainConfig, agent_cfg) -> None:
    for name in ("steps", "log_every", "eval_episodes"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    for name in ("eval_every", "save_every"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.eval_max_steps is not None and cfg.eval_max_steps <= 0:
        raise ConfigError(f"--eval-max-steps must be positive (or None), got {cfg.eval_max_steps}")
    if not cfg.seeds:
        raise ConfigError("--seeds needs at least one seed")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"--seeds has duplicates: {cfg.seeds}")
    if getattr(agent_cfg, "batch_size", 1) <= 0:
        raise ConfigError(f"--agent.batch-size must be positive, got {agent_cfg.batch_size}")


def default_run_dir(cfg: TrainConfig) -> Path:
    """Returns runs/<dataset>/<agent>/<timestamp> for a new run."""
    names = [Path(d).stem for d in cfg.dataset]
    label = names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"
    base = Path("runs") / label / cfg.agent / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():  # two runs started in the same second must not share (and resume) one folder
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


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


def make_train_chunk(step_fn, unroll: int = 1):
    """Returns chunk(agents, tasks, data, n) -> (agents, info[n, runs]): n vmapped updates in one lax.scan.

    unroll > 1 puts that many updates in one loop iteration: fewer loop-condition round trips to the host on GPUs.
    """

    def chunk(agents, tasks, data, num_steps: int):
        def body(carry, _):
            return jax.vmap(step_fn, in_axes=(0, 0, None))(carry, tasks, data)

        return jax.lax.scan(body, agents, None, length=num_steps, unroll=min(unroll, num_steps))

    return jax.jit(chunk, static_argnums=3, donate_argnums=0)


def init_agents(agent_cls, agent_cfg, example: dict, seeds: list[int]):
    """Returns one agent per seed, stacked along a leading run axis, each initialised from PRNGKey(seed)."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    return jax.vmap(lambda k: agent_cls.create(k, example, agent_cfg))(keys)


def make_act_fn():
    """Returns act(agents, run_index [M], obs [M, d], key) -> actions [M, a]: slot m acts with agent run_index[m]."""

    def act(agents, runs, obs, key):
        keys = jax.random.split(key, runs.shape[0])

        def one(r, o, k):
            return jax.tree.map(lambda x: x[r], agents).sample_actions(o, k)

        return jax.vmap(one)(runs, obs, keys)

    return jax.jit(act)


class Trainer:
    """Owns one training process: data, vmapped agents, logs, checkpoints, evaluation."""

    def __init__(self, cfg: TrainConfig, agent_overrides: dict | None = None):
        self.agent_cls, config_cls = get_agent(cfg.agent)
        try:
            self.agent_cfg = config_cls(**(agent_overrides or {}))
        except TypeError as e:
            raise ConfigError(f"bad agent option for {cfg.agent}: {e}") from None
        _check(cfg, self.agent_cfg)
        self.cfg = cfg
        jax.config.update(
            "jax_default_matmul_precision", None if cfg.matmul_precision == "default" else cfg.matmul_precision
        )
        self.run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        self.data = load_offline_data(cfg.dataset, cfg.data_dir, cfg.make_data, cfg.data_episodes)
        if self.agent_cfg.batch_size > self.data.size:
            raise ConfigError(
                f"--agent.batch-size {self.agent_cfg.batch_size} is larger than the dataset ({self.data.size} "
                "transitions); lower it or use more data"
            )
        self.runs = [
            Run(len(cfg.seeds) * t + i, t, s, cfg.dataset[t], self.data.env_names[t])
            for t in range(len(cfg.dataset))
            for i, s in enumerate(cfg.seeds)
        ]
        self.agents = init_agents(
            self.agent_cls, self.agent_cfg, self.data.example_batch(), [r.seed for r in self.runs]
        )
        self.tasks = jnp.array([r.task for r in self.runs])
        step_fn = make_step_fn(self.agent_cfg.batch_size, cfg.on_nonfinite == "skip")
        self.train_chunk = make_train_chunk(step_fn, cfg.scan_unroll)
        self.act = make_act_fn()
        self.train_log = CSVLogger(self.run_dir / "train.csv")
        self.eval_log = CSVLogger(self.run_dir / "eval.csv")
        self.step = 0
        self.elapsed = 0.0

    # ---- run folder -------------------------------------------------------------------------------------------
    def config_record(self) -> dict:
        """Returns what config.json holds: the train config, the agent config and the runs."""
        return {
            "train": dataclasses.asdict(self.cfg),
            "agent": dataclasses.asdict(self.agent_cfg),
            "runs": [dataclasses.asdict(r) for r in self.runs],
            "versions": {"jax": jax.__version__, "backend": jax.default_backend()},
        }

    def prepare_run_dir(self) -> bool:
        """Creates or resumes the run folder; returns True when it resumed from a checkpoint."""
        cfg_path = self.run_dir / "config.json"
        record = self.config_record()
        if cfg_path.exists():
            try:
                old = json.loads(cfg_path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ConfigError(
                    f"{cfg_path}: unreadable ({e}); the checkpoints and logs beside it are untouched — restore the "
                    "file, or pass another --run-dir"
                ) from None
            for key in ("agent", "runs"):
                if old.get(key) != json.loads(json.dumps(record[key])):
                    raise ConfigError(
                        f"{self.run_dir} holds a run with a different {key} config; use another --run-dir "
                        "or the same options to resume it"
                    )
            if old["train"]["agent"] != self.cfg.agent:
                raise ConfigError(f"{self.run_dir} was trained with agent {old['train']['agent']!r}")
            restored = checkpoint.load_latest(self.run_dir / "checkpoints", self.agents)
            if restored is not None:
                self.step, self.agents, meta = restored
                self.elapsed = meta["elapsed"]
                self.train_log.truncate(meta["train_csv"])
                self.eval_log.truncate(meta["eval_csv"])
                return True
            self.train_log.truncate(0)
            self.eval_log.truncate(0)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.write_atomic(cfg_path, json.dumps(record, indent=2).encode())
        return False

    def save(self) -> None:
        """Writes a checkpoint of all runs with the log positions it corresponds to."""
        meta = {"elapsed": self.elapsed, "train_csv": self.train_log.position(), "eval_csv": self.eval_log.position()}
        checkpoint.save(self.run_dir / "checkpoints", self.step, self.agents, meta, self.cfg.keep_checkpoints)

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
            self.train_log.log(row)

    def _check_finite(self, info: dict, start: int) -> None:
        if self.cfg.on_nonfinite == "skip":
            return
        first = None  # (step index, run, key, value) of the earliest non-finite value over all quantities
        for k, v in jax.device_get(info).items():
            bad = ~np.isfinite(v)
            if bad.any():
                i, r = np.argwhere(bad)[0]  # row-major: the earliest step of this quantity
                if first is None or i < first[0]:
                    first = (i, r, k, v[i, r])
        if first is not None:
            i, r, k, value = first
            raise DivergenceError(
                f"{k} became {value} at step {start + i + 1} (run {r}: {self.runs[r].dataset}, seed "
                f"{self.runs[r].seed}); the last good checkpoint in {self.run_dir / 'checkpoints'} is kept. "
                "Lower the learning rate, or pass --on-nonfinite skip"
            )

    def evaluate(self, episodes: int | None = None, workers: int | None = None) -> list[dict]:
        """Returns one result dict per run after evaluating every run in its environment."""
        episodes = episodes or self.cfg.eval_episodes
        workers = self.cfg.eval_workers if workers is None else workers
        if workers < 0:
            workers = os.cpu_count() or 1
        slots = min(episodes * len(self.runs), max(4, 2 * workers))
        pool = EnvPool(slots, workers)
        base_key = jax.random.PRNGKey(self.step)

        def act(runs, obs, step):
            return np.asarray(
                self.act(self.agents, jnp.asarray(runs), jnp.asarray(obs), jax.random.fold_in(base_key, step))
            )

        try:
            names = [r.env_name for r in self.runs]
            return evaluate(act, names, episodes, pool, seed=self.step, max_steps=self.cfg.eval_max_steps)
        finally:
            pool.close()

    def _log_eval(self, results: list[dict], seconds: float) -> None:
        for r, res in zip(self.runs, results, strict=True):
            row = {"step": self.step, "run": r.index, "task": r.dataset, "seed": r.seed, "env": r.env_name}
            row.update({f"eval/{k}": v for k, v in res.items()})
            row["time/eval_s"] = seconds
            self.eval_log.log(row)

    def train(self) -> list[dict]:
        """Trains all runs to cfg.steps, evaluating and saving on schedule; returns the final evaluation."""
        from tqdm import tqdm

        from sscp.plot import plot_run

        resumed = self.prepare_run_dir()
        if resumed:
            print(f"resuming {self.run_dir} from step {self.step}")
        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not cfg.progress, unit="step", dynamic_ncols=True)
        results: list[dict] = []
        while self.step < cfg.steps:
            n = min(cfg.log_every, cfg.steps - self.step)
            start = time.perf_counter()
            self.agents, info = self.train_chunk(self.agents, self.tasks, self.data, n)
            info = jax.device_get(info)  # the one host sync per chunk
            seconds = time.perf_counter() - start
            self._check_finite(info, self.step)
            self.step += n
            self.elapsed += seconds
            self._log_train(info, seconds, n)
            bar.update(n)
            bar.set_postfix({"upd/s": f"{n / seconds:.0f}", **{k: f"{np.mean(info[k]):.3g}" for k in list(info)[:3]}})
            done = self.step >= cfg.steps
            if done or (cfg.eval_every and self.step % cfg.eval_every < n):
                t0 = time.perf_counter()
                results = self.evaluate()
                self._log_eval(results, time.perf_counter() - t0)
                bar.write(f"step {self.step}: success " + " ".join(f"{r['success']:.2f}" for r in results))
                try:
                    plot_run(self.run_dir)
                except OSError as e:  # the plot is a convenience: a full disk must not stop training here
                    bar.write(f"warning: could not write {self.run_dir / 'curves.png'}: {e.strerror or e}")
            if done or (cfg.save_every and self.step % cfg.save_every < n):
                self.save()
        bar.close()
        if not results:  # a resumed run that had already finished
            results = self.evaluate()
        return results
