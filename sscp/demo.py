"""The built-in demo: generate a small OGBench dataset locally, train SSCP with small networks, evaluate, print."""

import time
from dataclasses import dataclass

import numpy as np

from sscp import report
from sscp.data import registry
from sscp.train import TrainConfig, Trainer


@dataclass(frozen=True)
class DemoArgs:
    """Make a small dataset, train SSCP on it with small networks, evaluate in the real environment, print a table.

    Defaults finish in about 6 minutes on 2 CPU cores, data generation included (`scripts/bootstrap.py demo` adds
    the one-time creation of its environment and install before the first run). At this scale (100 episodes, 20k
    updates, 3 × 128 networks) the success rate is usually still 0: the demo shows the pipeline end to end. The
    paper's settings are `sscp train --dataset cube-single-play-singletask-task1-v0 --make-data` on a GPU.
    """

    dataset: str = "cube-single-play-singletask-task1-v0"
    """Single-task OGBench dataset to make and train on."""
    episodes: int = 100
    """Episodes of data to generate (the official size is 1000)."""
    steps: int = 20_000
    """Gradient steps."""
    seeds: tuple[int, ...] = (0,)
    """Seeds, trained together with vmap."""
    eval_episodes: int = 20
    """Evaluation episodes per seed."""
    hidden: int = 128
    """Width of the small networks (the paper uses 4 × 512)."""
    run_dir: str | None = None
    """Run folder (default runs/demo/<timestamp>)."""
    data_dir: str | None = None
    """Dataset cache folder (default $SSCP_DATA_DIR or ~/.cache/sscp/data)."""


def demo(args: DemoArgs) -> list[dict]:
    """Runs the demo and returns the final evaluation of each seed."""
    cfg = TrainConfig(
        agent="sscp",
        dataset=(args.dataset,),
        steps=args.steps,
        seeds=args.seeds,
        run_dir=args.run_dir or f"runs/demo/{time.strftime('%Y%m%d-%H%M%S')}",
        data_dir=args.data_dir,
        make_data=True,
        data_episodes=args.episodes,
        eval_every=args.steps // 4,
        eval_episodes=args.eval_episodes,
        save_every=args.steps // 2,
    )
    overrides = {
        "batch_size": 256,
        "actor_hidden_dims": (args.hidden,) * 3,
        "critic_hidden_dims": (args.hidden,) * 3,
        "time_embed_dim": 32,
    }
    print(f"sscp demo: {args.dataset}, {_data_source(args)}, {args.steps} steps, small networks")
    return report.run(Trainer(cfg, overrides))


def _data_source(args: DemoArgs) -> str:
    """Returns where the demo's data comes from: episodes generated now, or the cached file, its size, and whether
    --episodes asked for another size (a cached file is used as it is)."""
    path = registry.resolve(args.dataset, args.data_dir).train_path
    if not path.is_file():
        return f"{args.episodes} episodes generated now into {path}"
    with np.load(path) as archive:
        episodes = int(np.count_nonzero(archive["terminals"]))
    note = "" if episodes == args.episodes else f"; --episodes {args.episodes} applies only when no file is cached"
    return f"the cached {path} ({episodes} episodes{note})"
