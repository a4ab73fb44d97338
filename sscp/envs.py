"""Environment slots stepped in lockstep, in this process or spread over worker processes.

OGBench environments are heavy (about a second and ~150 MB each to build), so evaluation keeps a few env slots and
runs episodes through them in waves rather than building one env per episode.
"""

import contextlib
import functools
import json
import multiprocessing as mp
import signal
from dataclasses import dataclass

import numpy as np

from sscp.errors import ConfigError


@contextlib.contextmanager
def global_seed(seed: int):
    """Seeds NumPy's global generator with `seed` for the block and puts its state back afterwards, for envs that draw
    from it (OGBench's mazes, robosuite 1.5.1): their draws then depend on the seed alone, and nothing else in the
    process sees a change."""
    saved = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(saved)


def env_name(env_id: str, make_kwargs: dict) -> str:
    """Returns the env name that makes gymnasium id `env_id` with `gymnasium.make` keyword arguments `make_kwargs`: the
    id itself when there are none, else the id followed by them as a JSON object, e.g.
    `Hopper-v5{"reset_noise_scale": 0.1}` (a Minari dataset recorded with that kwarg). Env names are what runs, eval
    jobs and env workers pass around, so the kwargs reach every place an env is made."""
    return env_id + json.dumps(make_kwargs, sort_keys=True) if make_kwargs else env_id


def split_env_name(name: str) -> tuple[str, dict]:
    """Returns (gymnasium id, make kwargs) of an env name (see env_name), or a ConfigError for kwargs that are not a
    JSON object."""
    env_id, brace, text = name.partition("{")
    if not brace:
        return name, {}
    try:
        kwargs = json.loads(brace + text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"environment {name!r}: what follows the id is not a JSON object of keyword arguments ({e})"
        ) from None
    return env_id, kwargs


def make_env(name: str):
    """Returns a gymnasium env by name (an id, or an id with make kwargs: see env_name); OGBench ids register on
    import, MuJoCo v5 ids come with gymnasium.

    Agents act in [-1, 1]: an env whose action bounds differ (e.g. Pendulum-v1, [-2, 2]) gets gymnasium's
    RescaleAction wrapper; OGBench and the MuJoCo locomotion envs already use [-1, 1] and are left as they are.
    """
    import gymnasium
    import ogbench  # noqa: F401  (registers the OGBench ids)

    import sscp.sims  # noqa: F401  (registers the simulators of the imitation benchmarks)

    check_env_id(name)
    env_id, kwargs = split_env_name(name)
    sscp.sims.require_for(env_id)
    try:
        env = gymnasium.make(env_id, **kwargs)
    except gymnasium.error.Error as e:
        raise ConfigError(f"cannot make environment {name!r}: {e}") from None
    except (TypeError, ValueError, OSError) as e:  # kwargs the env's constructor rejects
        if not kwargs:
            raise
        raise ConfigError(f"cannot make environment {name!r}: {type(e).__name__}: {' '.join(str(e).split())}") from None
    space = env.action_space
    if isinstance(space, gymnasium.spaces.Box) and not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
        env = gymnasium.wrappers.RescaleAction(env, -1.0, 1.0)
    return env


def check_env_id(name: str) -> None:
    """Raises ConfigError for an env name whose id neither gymnasium nor OGBench registers, naming close matches."""
    import difflib

    import gymnasium
    import ogbench  # noqa: F401

    import sscp.sims  # noqa: F401

    env_id = split_env_name(name)[0]
    if env_id in gymnasium.registry:
        return
    close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(
        f'unknown environment {env_id!r}; {hint}list the valid ids with `python -c "import gymnasium, ogbench; '
        'print(sorted(gymnasium.registry))"` (MuJoCo: HalfCheetah-v5, Hopper-v5, Walker2d-v5, Ant-v5, ...; OGBench '
        "single-task: cube-single-singletask-task1-v0, ...)"
    )


def reports_success(name: str) -> bool:
    """Returns whether the environment reports success in its step info: OGBench's environments and the simulators of
    sscp.sims do; Gymnasium's own (MuJoCo locomotion, classic control) do not, and their runs are compared by return.
    Unknown ids count as reporting it."""
    import gymnasium
    import ogbench  # noqa: F401  (registers the OGBench ids)

    import sscp.sims  # noqa: F401

    try:
        entry = gymnasium.spec(split_env_name(name)[0]).entry_point
    except (gymnasium.error.Error, ConfigError):
        return True
    module = entry if isinstance(entry, str) else getattr(entry, "__module__", "")
    return module.startswith(("ogbench", "sscp.sims"))


def normalized_score(ret: float, ref_scores: tuple[float, float] | None) -> float:
    """Returns D4RL's normalised score 100 * (ret - min) / (max - min) for reference returns (min, max), or NaN when
    there are none."""
    if ref_scores is None:
        return float("nan")
    low, high = ref_scores
    return 100.0 * (ret - low) / (high - low)


@functools.cache
def eval_goal_count(name: str) -> int:
    """Returns how many evaluation goals (OGBench tasks, 5 per env) env `name` defines, or a ConfigError."""
    env = make_env(name)
    try:
        count = len(getattr(env.unwrapped, "task_infos", []))
    finally:
        env.close()
    if count == 0:
        raise ConfigError(f"{name} defines no evaluation goals; goal-conditioned runs need an OGBench env such as "
                          "pointmaze-medium-v0")  # fmt: skip
    return count


@dataclass
class StepResult:
    """What one env slot returned for one step."""

    observation: np.ndarray
    reward: float
    done: bool
    success: float


class _Slots:
    """Env slots in one process: slot i holds one env, rebuilt only when its env id changes."""

    def __init__(self):
        self.envs: dict[int, tuple[str, object]] = {}

    def _reset(self, slot: int, name: str, seed: int, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if slot not in self.envs or self.envs[slot][0] != name:
            if slot in self.envs:
                self.envs[slot][1].close()
            self.envs[slot] = (name, make_env(name))
        # OGBench's maze envs draw their start and goal noise from NumPy's global RNG: seed it with the episode seed,
        # so an episode's start does not depend on what ran before in this process.
        with global_seed(seed):
            obs, info = self.envs[slot][1].reset(seed=seed, options=options)
        return np.asarray(obs, np.float32), info

    def reset(self, jobs: list[tuple[int, str, int]]) -> list[np.ndarray]:
        return [self._reset(slot, name, seed)[0] for slot, name, seed in jobs]

    def reset_to_goal(self, jobs: list[tuple[int, str, int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for slot, name, seed, task_id in jobs:
            obs, info = self._reset(slot, name, seed, {"task_id": task_id, "render_goal": False})
            out.append((obs, np.asarray(info["goal"], np.float32)))
        return out

    def step(self, jobs: list[tuple[int, np.ndarray]]) -> list[StepResult]:
        out = []
        for slot, action in jobs:
            obs, reward, terminated, truncated, info = self.envs[slot][1].step(action)
            out.append(
                StepResult(
                    np.asarray(obs, np.float32),
                    float(reward),
                    bool(terminated or truncated),
                    float(info.get("success", 0)),
                )
            )
        return out

    def close(self):
        for _, env in self.envs.values():
            env.close()
        self.envs.clear()


def _worker(conn) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and closes its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    slots = _Slots()
    try:
        while True:
            try:
                cmd, payload = conn.recv()
            except (EOFError, OSError):  # the parent is gone (killed): nothing left to serve
                break
            if cmd == "close":
                break
            try:
                result = ("ok", getattr(slots, cmd)(payload))
            except Exception as e:  # sent back and re-raised in the parent with the worker's message
                result = ("error", f"{type(e).__name__}: {e}")
            try:
                conn.send(result)
            except OSError:
                break
    finally:
        slots.close()
        conn.close()


class EnvPool:
    """Returns lockstep access to `num_slots` env slots; workers = 0 keeps them in this process."""

    def __init__(self, num_slots: int, workers: int = 0):
        if num_slots < 1:
            raise ConfigError(f"need at least one env slot, got {num_slots}")
        self.num_slots = num_slots
        self.workers = min(workers, num_slots)
        if self.workers == 0:
            self._local = _Slots()
            return
        ctx = mp.get_context("spawn")  # forking a process that runs JAX/MuJoCo threads is unsafe
        self._conns, self._procs = [], []
        for _ in range(self.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child,), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    def _owner(self, slot: int) -> int:
        return slot % self.workers

    def _call(self, cmd: str, jobs: list[tuple]) -> list:
        if self.workers == 0:
            return getattr(self._local, cmd)(jobs)
        groups: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(self._owner(job[0]), []).append(i)
        for w, idx in groups.items():
            self._conns[w].send((cmd, [jobs[i] for i in idx]))
        out: list = [None] * len(jobs)
        for w, idx in groups.items():
            status, result = self._conns[w].recv()
            if status == "error":
                raise RuntimeError(f"env worker {w}: {result}")
            for i, r in zip(idx, result, strict=True):
                out[i] = r
        return out

    def reset(self, jobs: list[tuple[int, str, int]]) -> list[np.ndarray]:
        """Returns first observations after resetting each (slot, env id, seed)."""
        return self._call("reset", jobs)

    def reset_to_goal(self, jobs: list[tuple[int, str, int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Returns (first observation, goal observation) after resetting each (slot, env id, seed, task id) to that
        evaluation goal of an OGBench goal-conditioned env (`reset(options=dict(task_id=...))`, `info['goal']`)."""
        return self._call("reset_to_goal", jobs)

    def step(self, jobs: list[tuple[int, np.ndarray]]) -> list[StepResult]:
        """Returns one StepResult per (slot, action)."""
        return self._call("step", jobs)

    def close(self) -> None:
        """Closes every env and stops the workers."""
        if self.workers == 0:
            self._local.close()
            return
        for conn, proc in zip(self._conns, self._procs, strict=True):
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
