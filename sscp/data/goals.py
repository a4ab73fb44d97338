"""Goal-conditioned batches drawn on the device from trajectories, as OGBench's GCDataset / HGCDataset draw them.

Every batch row is a transition (s_t, a_t, s_{t+1}) at a uniform index t, plus goals that are observations of the
dataset:
- `value_goals`: s_t itself (probability value_p_curgoal), a later state of the same trajectory s_{t+Δ} with
  Δ ~ Geometric(1 − γ) capped at the trajectory's last transition (value_p_trajgoal), or a uniformly random state
  (value_p_randomgoal); rewards are 0 where the value goal is s_t and −1 elsewhere, masks 0 there and 1 elsewhere.
- `actor_goals`: a uniform later state of the same trajectory, or, with probability actor_p_randomgoal (0.5 on
  stitch datasets), a uniformly random state.
- `high_actor_targets`: the subgoal k = subgoal_steps steps ahead, capped at the actor goal (trajectory goals) or
  at the trajectory's end (random goals): the high-level actor's target.
- `low_actor_goals`: s_{min(t + k, end)}, the low-level actor's subgoal.

Trajectories are found from `terminals` (1 at each episode's last transition); data without them is rejected.
Sampling is pure jnp on device arrays: jittable, and vmappable over runs (the data is shared).
"""

from dataclasses import dataclass

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sscp.data import registry
from sscp.errors import ConfigError, DataError

GOAL_KEYS = ("value_goals", "actor_goals", "high_actor_targets", "low_actor_goals")


@dataclass(frozen=True)
class GoalSampling:
    """How a goal-conditioned batch draws its goals; the defaults are OGBench's HIQL/GCIVL ones."""

    discount: float = 0.99
    """γ of the geometric offsets of trajectory value goals (mean offset 1 / (1 − γ))."""
    value_p_curgoal: float = 0.2
    """Probability that the value goal is the current state (reward 0, mask 0)."""
    value_p_trajgoal: float = 0.5
    """Probability that the value goal is a later state of the same trajectory."""
    value_p_randomgoal: float = 0.3
    """Probability that the value goal is a uniformly random dataset state."""
    value_geom_sample: bool = True
    """Trajectory value goals at geometric offsets (True) or uniformly among the later states (False)."""
    actor_p_randomgoal: float = 0.0
    """Probability that the actor goal is a random state instead of a uniform later state of the trajectory."""
    subgoal_steps: int = 25
    """k: subgoals are k steps ahead, capped at the trajectory's end or the actor goal."""

    def __post_init__(self):
        total = self.value_p_curgoal + self.value_p_trajgoal + self.value_p_randomgoal
        fractions = (self.value_p_curgoal, self.value_p_trajgoal, self.value_p_randomgoal)
        if min(fractions) < 0 or not np.isclose(total, 1.0):
            raise ConfigError(
                "--agent.value-p-curgoal, --agent.value-p-trajgoal and --agent.value-p-randomgoal must be >= 0 and "
                f"sum to 1, got {fractions}"
            )
        if not 0.0 <= self.actor_p_randomgoal <= 1.0:
            raise ConfigError(f"--agent.actor-p-randomgoal must be in [0, 1], got {self.actor_p_randomgoal}")
        if not 0.0 < self.discount < 1.0:
            raise ConfigError(f"--agent.discount must be in (0, 1), got {self.discount}")
        if self.subgoal_steps < 1:
            raise ConfigError(f"--agent.subgoal-steps must be >= 1, got {self.subgoal_steps}")


class GoalData(flax.struct.PyTreeNode):
    """Trajectory transitions [N, ...] on the device with each index's trajectory end; sample() draws goals."""

    observations: jax.Array
    actions: jax.Array
    next_observations: jax.Array
    final_index: jax.Array
    """[N] int32: the index of the last transition of the trajectory that index i belongs to."""
    sampling: GoalSampling = flax.struct.field(pytree_node=False)
    env_names: tuple[str, ...] = flax.struct.field(pytree_node=False)

    @classmethod
    def from_arrays(cls, arrays: dict, sampling: GoalSampling, env_name: str, source: str = "dataset") -> "GoalData":
        """Returns GoalData from loaded transitions (`observations`, `actions`, `next_observations`, `terminals`), or
        a DataError naming `source` when the data has no episode boundaries to draw trajectory goals from."""
        terminals = arrays.get("terminals")
        remedy = (
            "goal-conditioned agents draw goals from later states of the same trajectory, so the data needs "
            "`terminals` (1 at each episode's last transition), as OGBench's navigate and stitch datasets have"
        )
        if terminals is None:
            raise DataError(f"{source}: no key 'terminals'; {remedy}")
        terminals = np.asarray(terminals).reshape(-1)
        ends = np.flatnonzero(terminals > 0)
        if ends.size == 0:
            raise DataError(f"{source}: key 'terminals' is 0 everywhere, so no episode ends; {remedy}")
        if ends[-1] != terminals.size - 1:
            raise DataError(f"{source}: key 'terminals' does not end with 1, so the last episode is cut off; {remedy}")
        final_index = ends[np.searchsorted(ends, np.arange(terminals.size))]
        return cls(
            observations=jnp.asarray(arrays["observations"], jnp.float32),
            actions=jnp.asarray(arrays["actions"], jnp.float32),
            next_observations=jnp.asarray(arrays["next_observations"], jnp.float32),
            final_index=jnp.asarray(final_index, jnp.int32),
            sampling=sampling,
            env_names=(env_name,),
        )

    @property
    def size(self) -> int:
        """Returns the number of transitions."""
        return int(self.observations.shape[0])

    def goal_indices(self, key: jax.Array, idx: jax.Array) -> dict:
        """Returns the dataset indices of every goal of the rows at indices idx (the keys of GOAL_KEYS)."""
        s = self.sampling
        n, shape = self.observations.shape[0], idx.shape
        keys = jax.random.split(key, 6)
        final = self.final_index[idx]

        if s.value_geom_sample:
            offsets = jax.random.geometric(keys[0], 1.0 - s.discount, shape)  # in [1, ∞)
            value_traj = jnp.minimum(idx + offsets, final)
        else:
            value_traj = _uniform_later(keys[0], idx, final)
        u = jax.random.uniform(keys[1], shape)
        value_random = jax.random.randint(keys[2], shape, 0, n)
        value_goals = jnp.where(
            u < s.value_p_curgoal, idx, jnp.where(u < s.value_p_curgoal + s.value_p_trajgoal, value_traj, value_random)
        )

        low = jnp.minimum(idx + s.subgoal_steps, final)
        actor_traj = _uniform_later(keys[3], idx, final)
        pick_random = jax.random.uniform(keys[4], shape) < s.actor_p_randomgoal
        actor_goals = jnp.where(pick_random, jax.random.randint(keys[5], shape, 0, n), actor_traj)
        high_targets = jnp.where(pick_random, low, jnp.minimum(idx + s.subgoal_steps, actor_traj))
        return {
            "value_goals": value_goals,
            "actor_goals": actor_goals,
            "high_actor_targets": high_targets,
            "low_actor_goals": low,
        }

    def sample(self, key: jax.Array, batch_size: int, task: jax.Array | int = 0) -> dict:
        """Returns a batch of transitions with goals (GOAL_KEYS) and the value goals' rewards and masks; `task` is
        ignored (one goal-conditioned dataset per process), kept for the OfflineData interface."""
        idx_key, goal_key = jax.random.split(key)
        idx = jax.random.randint(idx_key, (batch_size,), 0, self.observations.shape[0])
        goals = self.goal_indices(goal_key, idx)
        success = (goals["value_goals"] == idx).astype(jnp.float32)
        return {
            "observations": self.observations[idx],
            "actions": self.actions[idx],
            "next_observations": self.next_observations[idx],
            "rewards": success - 1.0,
            "masks": 1.0 - success,
            **{k: self.observations[v] for k, v in goals.items()},
        }

    def example_batch(self) -> dict:
        """Returns a one-row batch, for shaping networks."""
        return self.sample(jax.random.PRNGKey(0), 1)


def _uniform_later(key: jax.Array, idx: jax.Array, final: jax.Array) -> jax.Array:
    """Returns a uniform index in [min(idx + 1, final), final] (rounded as OGBench does): a later state of the
    trajectory, or the last one for the last transition."""
    d = jax.random.uniform(key, idx.shape)
    start = jnp.minimum(idx + 1, final).astype(jnp.float32)
    return jnp.round(start * d + final.astype(jnp.float32) * (1.0 - d)).astype(idx.dtype)


def example_goal_batch(obs_dim: int, action_dim: int, batch: int = 1) -> dict:
    """Returns a goal-conditioned batch of zeros, for shaping networks without data (benchmarks)."""
    obs = jnp.zeros((batch, obs_dim), jnp.float32)
    return {
        "observations": obs,
        "actions": jnp.zeros((batch, action_dim), jnp.float32),
        "next_observations": obs,
        "rewards": -jnp.ones((batch,), jnp.float32),
        "masks": jnp.ones((batch,), jnp.float32),
        **dict.fromkeys(GOAL_KEYS, obs),
    }


def load_goal_data(
    name: str,
    sampling: GoalSampling,
    data_dir: str | None = None,
    make_if_missing: bool = False,
    episodes: int | None = None,
) -> GoalData:
    """Returns the goal-conditioned dataset `name` (e.g. pointmaze-medium-navigate-v0, or an .npz path) on the
    device; a ConfigError for single-task names, whose fixed task has no place in goal-conditioned training."""
    spec = registry.resolve(name, data_dir)
    if spec.single_task:
        raise ConfigError(
            f"{name} is a single-task dataset; goal-conditioned agents train on the goal-conditioned one, "
            f"{spec.dataset_name}, and are evaluated on its environment's 5 evaluation goals"
        )
    if spec.format != "ogbench":
        raise ConfigError(
            f"{name}: goal-conditioned agents read OGBench-layout .npz datasets, whose `terminals` mark each episode's "
            f"end (this one is {spec.format}); use e.g. pointmaze-medium-navigate-v0"
        )
    if spec.env_name is None and not spec.train_path.exists():  # a missing file first: no name fixes that
        raise registry.missing_file_error(spec)
    if spec.env_name is None:
        why = spec.env_note or "name the file like OGBench (e.g. pointmaze-medium-navigate-v0.npz)"
        raise DataError(f"{spec.train_path}: cannot tell which environment evaluates it; {why}")
    train, _ = registry.load(spec, make_if_missing=make_if_missing, episodes=episodes)
    return GoalData.from_arrays(train, sampling, spec.env_name, str(spec.train_path))
