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
    slot_job: list[tuple[int, int] | None] = [None] * pool.num_slots
    slot_env: list[str | None] = [None] * pool.num_slots  # building an env costs ~1 s: reuse a slot's env id
    obs: list[np.ndarray | None] = [None] * pool.num_slots
    goals: list[np.ndarray | None] = [None] * pool.num_slots
    ret = np.zeros(pool.num_slots)
    length = np.zeros(pool.num_slots, dtype=np.int64)
    results = [{"success": [], "return": [], "length": []} for _ in env_names]
    while queue or any(j is not None for j in slot_job):
        free = [s for s in range(pool.num_slots) if slot_job[s] is None][: len(queue)]
        if free:
            jobs = [_next_job(queue, env_names, slot_env[s]) for s in free]
            resets = [
                (s, env_names[r], seed * 1_000_003 + r * 10_007 + e) for s, (r, e) in zip(free, jobs, strict=True)
            ]
            if task_ids is None:
                first = [(o, None) for o in pool.reset(resets)]
            else:
                first = pool.reset_to_goal([(*job, task_ids[r]) for job, (r, _) in zip(resets, jobs, strict=True)])
            for s, job, (o, g) in zip(free, jobs, first, strict=True):
                slot_job[s], obs[s], goals[s], ret[s], length[s] = job, o, g, 0.0, 0
                slot_env[s] = env_names[job[0]]
            if begin is not None:
                begin(free)
        active = [s for s in range(pool.num_slots) if slot_job[s] is not None]
        template = obs[active[0]]
        batch_obs = np.stack([obs[s] if obs[s] is not None else np.zeros_like(template) for s in range(pool.num_slots)])
        runs = np.array([slot_job[s][0] if slot_job[s] is not None else 0 for s in range(pool.num_slots)])
        episode_steps = np.array(
            [(slot_job[s][1], length[s]) if slot_job[s] is not None else (0, 0) for s in range(pool.num_slots)],
            np.int64,
        )
        if task_ids is None:
            actions = act(runs, batch_obs, episode_steps)
        else:
            goal = goals[active[0]]
            batch_goals = np.stack(
                [goals[s] if goals[s] is not None else np.zeros_like(goal) for s in range(len(goals))]
            )
            actions = act(runs, batch_obs, episode_steps, batch_goals)
        for s, res in zip(active, pool.step([(s, actions[s]) for s in active]), strict=True):
            obs[s] = res.observation
            ret[s] += res.reward
            length[s] += 1
            if res.done or (max_steps is not None and length[s] >= max_steps):
                r = slot_job[s][0]
                results[r]["success"].append(res.success)
                results[r]["return"].append(ret[s])
                results[r]["length"].append(length[s])
                slot_job[s], obs[s], goals[s] = None, None, None
                if end is not None:
                    end(s)
    return [{k: float(np.mean(v)) for k, v in res.items()} for res in results]


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
