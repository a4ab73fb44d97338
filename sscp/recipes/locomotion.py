"""D4RL-style locomotion datasets made here from the project's own SAC training, on Gymnasium's v5 MuJoCo envs.

The recipe is D4RL's (Fu et al., arXiv 2004.07219, §5) as Minari's MuJoCo datasets also follow it: one SAC run per
env (sscp's `sac` agent in the ordinary online loop, a resumable run folder in the dataset cache) whose policy is kept
at every evaluation; `expert` = rollouts of the final policy; `medium` = rollouts of the kept policy whose evaluation
return is closest to a third of the final one's; `medium-replay` = the replay buffer up to that policy's step;
`random` = a uniformly random policy; `medium-expert` = medium followed by expert. Rollouts act with SAC's stochastic
policy (samples of the tanh-Gaussian), as D4RL's did. Every file gets a sidecar `NAME.json` with the random and
expert reference returns (the mean returns of the random and expert rollouts' finished episodes), which
`registry.resolve` turns into the spec's reference scores, so evaluations log normalised returns.

The names and the sidecar files belong to the data layer (`sscp.data.locomotion`); this recipe trains, so it sits
above the training loop, and the commands (`sscp data make`, a sweep's `make_data`) hand its `make` to
`registry.make_command`.
"""

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

from sscp import checkpoint
from sscp.data.formats import save_ogbench_npz
from sscp.data.locomotion import DATASETS, ENVS, VERSION, parse, sidecar_path
from sscp.errors import ConfigError, DataError
from sscp.online import OnlineEnvs, collect_action
from sscp.run_folder import CHECKPOINTS
from sscp.train import TrainConfig, Trainer

DEFAULT_TRAIN_STEPS = 1_000_000  # SAC env steps: D4RL's experts trained for 1M steps
DEFAULT_TRANSITIONS = 1_000_000  # D4RL's size of random, medium and expert
DEFAULT_EVAL_EVERY = 20_000  # env steps between kept (and evaluated) policies: the resolution of `medium`
DEFAULT_EVAL_EPISODES = 10
MEDIUM_FRACTION = 1 / 3  # D4RL: medium reaches about a third of the expert's performance
ROLLOUT_ENVS = 10  # envs stepped in lockstep per rollout (one policy call for all of them)
FIELDS = ("observations", "actions", "next_observations", "rewards", "masks", "terminals")


def select_medium(returns: Sequence[float], fraction: float = MEDIUM_FRACTION) -> int:
    """Returns the index of the policy whose return is closest to `fraction` × the last (final, expert) policy's
    return; the final policy itself only when it is the only one; the earliest on ties."""
    if not returns:
        raise ConfigError("no evaluated policies to choose the medium one from")
    target = fraction * returns[-1]
    candidates = returns[:-1] if len(returns) > 1 else returns
    return int(np.argmin(np.abs(np.asarray(candidates, np.float64) - target)))


# ---- rollouts --------------------------------------------------------------------------------------------------------


def rollout(env_id: str, policy: Callable, transitions: int, seed: int, num_envs: int = ROLLOUT_ENVS):
    """Returns (dataset, returns): `transitions` transitions of `policy(obs [n, d], t) -> actions [n, a]` in
    `num_envs` envs stepped in lockstep, env after env in the result (each env's last stored transition ends an
    episode, cut there like a D4RL timeout), and the returns of every episode finished, stepping on past
    `transitions` if needed until one has."""
    num_envs = max(1, min(num_envs, transitions))
    seeds = [int(s) for s in np.random.SeedSequence([seed, 11]).generate_state(num_envs)]
    envs = OnlineEnvs([env_id] * num_envs, seeds)
    per_env = [transitions // num_envs + (i < transitions % num_envs) for i in range(num_envs)]
    steps: list[dict] = []
    try:
        envs.reset()
        while len(steps) < max(per_env) or not any(envs.finished):
            step = envs.step(np.asarray(policy(envs.obs.copy(), len(steps)), np.float32))
            step["terminals"] = (envs.episode_length == 0).astype(np.float32)  # reset by the autoreset: episode over
            steps.append(step)
    finally:
        envs.close()
    returns = [r for finished in envs.finished for r, _, _ in finished]
    dataset = {}
    for key in FIELDS:
        stacked = np.stack([np.asarray(s[key], np.float32) for s in steps], axis=1)  # [envs, steps, ...]
        parts = [stacked[i, : per_env[i]] for i in range(num_envs)]
        if key == "terminals":
            for part in parts:
                part[-1] = 1.0
        dataset[key] = np.concatenate(parts)
    return dataset, returns


def uniform_policy(action_dim: int, seed: int) -> Callable:
    """Returns policy(obs, t) -> actions drawn uniformly from [-1, 1]."""
    rng = np.random.default_rng(seed)
    return lambda obs, t: rng.uniform(-1.0, 1.0, (len(obs), action_dim))


def sac_policy(agents, seed: int) -> Callable:
    """Returns policy(obs, t) -> samples of run 0's stochastic SAC policy (what SAC collects data with), keyed by t."""
    agent = jax.tree.map(lambda x: x[0], agents)
    act = jax.jit(collect_action)
    base = jax.random.PRNGKey(seed)
    return lambda obs, t: np.asarray(act(agent, obs, jax.random.fold_in(base, t)))


def buffer_transitions(buffer: dict, steps: int) -> dict:
    """Returns the first `steps` transitions of run 0's saved replay buffer, with episode ends where an episode
    terminated or the next row starts another episode (the autoreset), and at the last row."""
    data = {k: np.asarray(buffer[k][0, :steps], np.float32) for k in FIELDS if k != "terminals"}
    restart = np.any(data["next_observations"][:-1] != data["observations"][1:], axis=1)
    data["terminals"] = np.concatenate([(data["masks"][:-1] == 0) | restart, [True]]).astype(np.float32)
    return data


# ---- the SAC run -----------------------------------------------------------------------------------------------------


def run_folder(out_dir: Path, env: str, seed: int, train_steps: int, env_steps_per_call: int = 1) -> Path:
    """Returns the SAC run folder of an env inside the dataset folder (one per seed, budget and acting chunk)."""
    chunk = f"-chunk{env_steps_per_call}" if env_steps_per_call > 1 else ""
    return out_dir / "locomotion-runs" / f"{env}-{VERSION}-sac-seed{seed}-steps{train_steps}{chunk}"


def train_sac(env: str, run_dir: Path, train_steps: int, seed: int, options: dict, agent_options: dict):
    """Returns (trainer, [(env step, evaluation return, policy file)]) after running, or resuming, the SAC run; the
    policy is kept at every evaluation (every `eval_every` env steps and at the end) in `run_dir/policies/`."""

    class PolicyKeepingTrainer(Trainer):
        """A Trainer that also saves the agents after every evaluation, with that evaluation's return."""

        def evaluate(self, episodes=None, workers=None):
            results = super().evaluate(episodes, workers)
            meta = {"env_steps": self.env_steps, "return": float(results[0]["return"])}
            checkpoint.save(self.run_dir / "policies", self.total_step, self.agents, meta, keep=0)
            return results

    cfg = TrainConfig(agent="sac", env=(ENVS[env],), online_steps=train_steps, seeds=(seed,), run_dir=str(run_dir),
                      **options)  # fmt: skip
    trainer = PolicyKeepingTrainer(cfg, agent_options)
    saved = checkpoint.list_checkpoints(run_dir / CHECKPOINTS)
    finished = saved and saved[-1].name == f"step_{train_steps:010d}.ckpt"
    if not (finished and (run_dir / "policies" / saved[-1].name).is_file()):
        trainer.train()
    policies = []
    for path in checkpoint.list_checkpoints(run_dir / "policies"):
        meta = checkpoint.read_payload(path)["meta"]
        policies.append((int(meta["env_steps"]), float(meta["return"]), path))
    return trainer, policies


# ---- making the datasets ---------------------------------------------------------------------------------------------


def medium_warning(returns: Sequence[float], steps: Sequence[int], medium: int) -> str | None:
    """Returns a warning when the picked medium policy's return is more than 2x away from MEDIUM_FRACTION of the final
    one's (D4RL's medium scores about a third of its expert): the kept policies were too far apart to pick a closer
    one. None when it is close enough (or the final return is not positive, where a fraction means nothing)."""
    final = returns[-1]
    if final <= 0:
        return None
    ratio = returns[medium] / final
    if MEDIUM_FRACTION / 2 <= ratio <= MEDIUM_FRACTION * 2:
        return None
    return (
        f"warning: the medium policy (env step {steps[medium]}) scored {returns[medium]:.1f}, {ratio:.2f} x the final "
        f"policy's {final:.1f}, where D4RL's medium is about {MEDIUM_FRACTION:.2f} x: no kept policy was closer. A "
        "smaller --eval-every keeps policies closer together (a new SAC run)"
    )


def make(
    name: str,
    out_dir: str | os.PathLike,
    *,
    train_steps: int = DEFAULT_TRAIN_STEPS,
    transitions: int = DEFAULT_TRANSITIONS,
    seed: int = 0,
    eval_every: int = DEFAULT_EVAL_EVERY,
    eval_episodes: int = DEFAULT_EVAL_EPISODES,
    workers: int = 0,
    env_steps_per_call: int = 1,
    progress: bool = True,
    num_envs: int = ROLLOUT_ENVS,
    train_options: dict | None = None,
    agent_options: dict | None = None,
) -> list[Path]:
    """Returns the paths of all five datasets of `name`'s env (`<env>-<kind>-v5.npz`, each with `<...>.json`), after
    training or resuming its SAC run and writing them.

    Args:
        name: any of the env's five names, e.g. `hopper-medium-v5` (the five share the run and reference returns).
        out_dir: dataset folder; the SAC run lives in `out_dir/locomotion-runs/`.
        train_steps: SAC env steps (1M for D4RL-like experts: a GPU machine, or many hours on a CPU).
        transitions: size of random, medium and expert (medium-replay has the medium policy's env step count).
        eval_every: env steps between kept policies; eval_episodes: deterministic episodes per evaluation.
        workers: processes stepping evaluation envs (0: in this process).
        env_steps_per_call: the SAC run's `--env-steps-per-call` (1: one device call per env step; K > 1: the host
            acts for K env steps with a copy of the policy, then one call makes their K updates — much faster on a
            GPU).
        train_options, agent_options: further TrainConfig and SAC config fields (tests use tiny networks).
    """
    env = _checked_env(name, train_steps, transitions, eval_every, env_steps_per_call)
    env_id = ENVS[env]
    out_dir = Path(out_dir).expanduser()
    run_dir = run_folder(out_dir, env, seed, train_steps, env_steps_per_call)
    options = {"eval_every": eval_every, "save_every": eval_every, "eval_episodes": eval_episodes,
               "eval_workers": workers, "env_steps_per_call": env_steps_per_call, "progress": progress,
               **(train_options or {})}  # fmt: skip
    trainer, policies = train_sac(env, run_dir, train_steps, seed, options, agent_options or {})
    steps, returns, paths = zip(*policies, strict=True)
    medium = select_medium(returns)
    warning = medium_warning(returns, steps, medium)
    if warning:
        print(warning, file=sys.stderr)
    _, expert_agents, _ = checkpoint.load(paths[-1], trainer.agents)
    _, medium_agents, _ = checkpoint.load(paths[medium], trainer.agents)
    final = checkpoint.load_latest(run_dir / CHECKPOINTS, trainer.agents)
    if final is None or final[0] != train_steps:
        raise DataError(f"{run_dir / 'checkpoints'}: no readable final checkpoint; rerun `sscp data make {name}`")
    replay = buffer_transitions(final[2]["online"]["buffer"], steps[medium])
    datasets = _rollouts(env_id, trainer.action_dim, (expert_agents, medium_agents), replay, steps, medium, transitions,
                         seed, num_envs)  # fmt: skip
    common = _meta(env_id, run_dir, seed, train_steps, env_steps_per_call, steps, returns, medium, datasets)
    return _write_datasets(out_dir, env, datasets, common)


def _rollouts(env_id: str, action_dim: int, agents: tuple, replay: dict, steps: tuple, medium: int, transitions: int,
              seed: int, num_envs: int) -> dict:  # fmt: skip
    """Returns kind -> (data, episode returns or None, where it came from) of the five datasets: rollouts of the
    uniform, expert and medium policies (agents: expert's, medium's), the replay buffer up to the medium policy, and
    medium followed by expert."""
    expert_agents, medium_agents = agents
    seeds = np.random.SeedSequence([seed, 2026]).generate_state(3)
    random_data, random_returns = rollout(env_id, uniform_policy(action_dim, seeds[0]), transitions, int(seeds[0]),
                                          num_envs)  # fmt: skip
    expert_data, expert_returns = rollout(env_id, sac_policy(expert_agents, seeds[1]), transitions, int(seeds[1]),
                                          num_envs)  # fmt: skip
    medium_data, medium_returns = rollout(env_id, sac_policy(medium_agents, seeds[2]), transitions, int(seeds[2]),
                                          num_envs)  # fmt: skip
    return {
        "random": (random_data, random_returns, "uniformly random actions in [-1, 1]"),
        "medium": (medium_data, medium_returns, f"SAC's stochastic policy at env step {steps[medium]}"),
        "medium-replay": (replay, None, f"SAC's replay buffer, env steps 1 to {steps[medium]}"),
        "expert": (expert_data, expert_returns, f"SAC's stochastic policy at env step {steps[-1]} (final)"),
        "medium-expert": (
            {k: np.concatenate([medium_data[k], expert_data[k]]) for k in FIELDS},
            medium_returns + expert_returns,
            "medium followed by expert",
        ),
    }


def _meta(env_id: str, run_dir: Path, seed: int, train_steps: int, env_steps_per_call: int, steps: tuple,
          returns: tuple, medium: int, datasets: dict) -> dict:  # fmt: skip
    """Returns the metadata the five datasets share: reference returns (random and expert rollouts), the SAC run, and
    which kept policy became medium and why."""
    return {
        "env_id": env_id,
        "ref_min_score": float(np.mean(datasets["random"][1])),
        "ref_max_score": float(np.mean(datasets["expert"][1])),
        "reference": "mean returns of the finished episodes of the random and expert rollouts",
        "sac_run": str(run_dir),
        "seed": seed,
        "train_steps": train_steps,
        "env_steps_per_call": env_steps_per_call,
        "medium_env_step": steps[medium],
        "medium_fraction_of_final": float(returns[medium] / returns[-1]) if returns[-1] else None,
        "expert_env_step": steps[-1],
        "policy_eval_returns": {str(s): r for s, r in zip(steps, returns, strict=True)},
        "selection": f"medium: the kept policy whose evaluation return is closest to {MEDIUM_FRACTION:.3f} x the "
        "final policy's (deterministic evaluation, tanh of the mean)",
    }


def _checked_env(name: str, train_steps: int, transitions: int, eval_every: int, env_steps_per_call: int) -> str:
    """Returns the env of a locomotion dataset name, or a ConfigError for the name or a bad budget."""
    parsed = parse(name)
    if parsed is None:
        raise ConfigError(f"unknown locomotion dataset {name!r}; valid: {', '.join(DATASETS)}")
    for label, value in (("--train-steps", train_steps), ("--transitions", transitions), ("--eval-every", eval_every)):
        if value <= 0:
            raise ConfigError(f"{label} must be positive, got {value}")
    if env_steps_per_call <= 0:
        raise ConfigError(
            f"--env-steps-per-call must be positive (1: one device call per env step), got {env_steps_per_call}"
        )
    if eval_every > train_steps:
        raise ConfigError(f"--eval-every {eval_every} exceeds --train-steps {train_steps}: no medium policy to pick")
    return parsed[0]


def _write_datasets(out_dir: Path, env: str, datasets: dict, common: dict) -> list[Path]:
    """Writes each dataset (kind -> (data, episode returns or None, where it came from)) with its metadata file
    beside it; returns the data files' paths."""
    written = []
    for kind, (data, episode_returns, source) in datasets.items():
        path = out_dir / f"{env}-{kind}-{VERSION}.npz"
        meta = {"dataset": path.stem, "kind": kind, "policy": source, "transitions": len(data["observations"]),
                "episodes_finished": None if episode_returns is None else len(episode_returns),
                "mean_episode_return": None if episode_returns is None else float(np.mean(episode_returns)),
                **common}  # fmt: skip
        # The metadata first: a data file at its final name always has its metadata beside it.
        checkpoint.write_atomic(sidecar_path(path), json.dumps(meta, indent=2).encode())
        save_ogbench_npz(path, data)
        written.append(path)
    return written
