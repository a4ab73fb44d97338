"""Rollouts of a batch of policies (one per run) in real environments; success rate and return per run, or, for
goal-conditioned policies, per (run, evaluation goal)."""

from collections import deque
from collections.abc import Callable

import numpy as np

from sscp.envs import EnvPool

# act(run_index [M], observations [M, obs_dim], episode_steps [M, 2]) -> actions [M, action_dim] as a numpy array;
# with task_ids, act(run_index, observations, episode_steps, goals [M, goal_dim]). episode_steps[m] is slot m's
# (episode, step within the episode): a stochastic policy that draws its noise from (run_index, episode_steps) gives
# results that do not depend on the number of slots or workers.
ActFn = Callable[..., np.ndarray]


def evaluate(
    act: ActFn,
    env_names: list[str],
    episodes: int,
    pool: EnvPool,
    seed: int = 0,
    max_steps: int | None = None,
    task_ids: list[int] | None = None,
) -> list[dict]:
    """Returns, per run, mean success, return and episode length over `episodes` episodes in env_names[run].

    task_ids, if given, makes the runs goal-conditioned: run r's episodes start at OGBench evaluation goal
    task_ids[r] of its env, and act receives each slot's goal observation.

    max_steps, if given, ends an episode after that many steps even if the env's own time limit is longer (success
    is then that of the last step); for smoke tests, since OGBench episodes are 200-1000 steps long.

    Episodes go through the pool's slots in waves; every step makes ONE policy call for all slots. Episode seeds
    depend only on (seed, run, episode), and act learns each slot's (episode, step in episode), so results do not
    depend on the number of slots or workers. An act with begin_episodes(slots) / end_episode(slot) methods
    (ChunkedActor) is told when each slot's episodes start and end.
    """
    begin, end = getattr(act, "begin_episodes", None), getattr(act, "end_episode", None)
    queue = deque((r, e) for e in range(episodes) for r in range(len(env_names)))
    slots = _Slots(pool.num_slots)
    results = [{"success": [], "return": [], "length": []} for _ in env_names]
    while queue or slots.active():
        free = slots.free()[: len(queue)]
        if free:
            jobs = [_next_job(queue, env_names, slots.env[s]) for s in free]
            resets = [
                (s, env_names[r], seed * 1_000_003 + r * 10_007 + e) for s, (r, e) in zip(free, jobs, strict=True)
            ]
            if task_ids is None:
                first = [(o, None) for o in pool.reset(resets)]
            else:
                first = pool.reset_to_goal([(*job, task_ids[r]) for job, (r, _) in zip(resets, jobs, strict=True)])
            for s, job, (o, g) in zip(free, jobs, first, strict=True):
                slots.start(s, job, env_names[job[0]], o, g)
            if begin is not None:
                begin(free)
        active = slots.active()
        runs, batch_obs, episode_steps, batch_goals = slots.batch()
        if task_ids is None:
            actions = act(runs, batch_obs, episode_steps)
        else:
            actions = act(runs, batch_obs, episode_steps, batch_goals)
        for s, res in zip(active, pool.step([(s, actions[s]) for s in active]), strict=True):
            slots.obs[s] = res.observation
            slots.ret[s] += res.reward
            slots.length[s] += 1
            if res.done or (max_steps is not None and slots.length[s] >= max_steps):
                r = slots.job[s][0]
                results[r]["success"].append(res.success)
                results[r]["return"].append(slots.ret[s])
                results[r]["length"].append(slots.length[s])
                slots.job[s], slots.obs[s], slots.goals[s] = None, None, None
                if end is not None:
                    end(s)
    return [{k: float(np.mean(v)) for k, v in res.items()} for res in results]


class _Slots:
    """What each of the pool's slots is playing: its (run, episode), env id (building an env costs ~1 s, so a slot
    keeps its env id while it can), observation, goal, return and length so far."""

    def __init__(self, n: int):
        self.job: list[tuple[int, int] | None] = [None] * n
        self.env: list[str | None] = [None] * n
        self.obs: list[np.ndarray | None] = [None] * n
        self.goals: list[np.ndarray | None] = [None] * n
        self.ret = np.zeros(n)
        self.length = np.zeros(n, dtype=np.int64)

    def free(self) -> list[int]:
        return [s for s, job in enumerate(self.job) if job is None]

    def active(self) -> list[int]:
        return [s for s, job in enumerate(self.job) if job is not None]

    def start(self, s: int, job: tuple[int, int], env: str, obs: np.ndarray, goal: np.ndarray | None) -> None:
        self.job[s], self.obs[s], self.goals[s], self.ret[s], self.length[s] = job, obs, goal, 0.0, 0
        self.env[s] = env

    def batch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Returns (run, observation, (episode, step in episode), goal) of every slot, zeros for the idle ones (one
        policy call acts for all slots); goals None when no slot has one."""
        first = self.active()[0]
        obs = np.stack([o if o is not None else np.zeros_like(self.obs[first]) for o in self.obs])
        runs = np.array([job[0] if job is not None else 0 for job in self.job])
        steps = np.array(
            [(job[1], n) if job is not None else (0, 0) for job, n in zip(self.job, self.length, strict=True)],
            np.int64,
        )
        goals = None
        if self.goals[first] is not None:
            goals = np.stack([g if g is not None else np.zeros_like(self.goals[first]) for g in self.goals])
        return runs, obs, steps, goals


class ChunkedActor:
    """An ActFn for policies that map the last m observations (flattened, oldest first) to a chunk of H actions
    (flattened): each slot keeps its observation history and a queue of actions, executes the first n actions of each
    predicted chunk, then predicts again (Diffusion Policy's receding horizon). A slot's history starts as m copies
    of its episode's first observation, as the training sampler pads. Each slot's actions depend only on its own
    episode, so results do not depend on the number of slots (for a policy that is deterministic given its input).
    """

    def __init__(self, act: ActFn, action_dim: int, execute_steps: int, obs_history: int):
        self.act, self.action_dim, self.execute_steps, self.obs_history = act, action_dim, execute_steps, obs_history
        self.history: dict[int, deque | None] = {}  # slot -> last m observations (None: the episode just began)
        self.queue: dict[int, deque] = {}  # slot -> actions still to execute
        self.calls = 0  # policy calls so far (each serves every slot whose queue is empty)

    def begin_episodes(self, slots: list[int]) -> None:
        """Starts new episodes in slots: empty queues and histories."""
        for s in slots:
            self.history[s], self.queue[s] = None, deque()

    def end_episode(self, slot: int) -> None:
        """Forgets a finished slot, so it asks for no more predictions."""
        self.history.pop(slot, None)
        self.queue.pop(slot, None)

    def __call__(self, runs: np.ndarray, observations: np.ndarray, episode_steps: np.ndarray, *goals) -> np.ndarray:
        """Returns the next action of every slot, predicting new chunks for the slots whose queue is empty."""
        for s in self.queue:
            if self.history[s] is None:
                self.history[s] = deque([observations[s]] * self.obs_history, maxlen=self.obs_history)
            else:
                self.history[s].append(observations[s])
        if any(not q for q in self.queue.values()):
            width = self.obs_history * observations.shape[1]
            stacked = np.zeros((len(observations), width), observations.dtype)
            for s, h in self.history.items():
                stacked[s] = np.concatenate(h)
            chunks = self.act(runs, stacked, episode_steps, *goals)
            chunks = np.asarray(chunks).reshape(len(observations), -1, self.action_dim)
            self.calls += 1
            for s, q in self.queue.items():
                if not q:
                    q.extend(chunks[s, : self.execute_steps])
        actions = np.zeros((len(observations), self.action_dim), np.float32)
        for s, q in self.queue.items():
            actions[s] = q.popleft()
        return actions


def _next_job(queue: deque, env_names: list[str], env: str | None) -> tuple[int, int]:
    """Removes and returns the first queued (run, episode) whose env id is `env`, else the first one."""
    for i, job in enumerate(queue):
        if env_names[job[0]] == env:
            del queue[i]
            return job
    return queue.popleft()
