"""Where to compare the groups of a sweep that a time limit ended: for each dataset (or env), the largest number of
updates of which every group training on it kept a checkpoint. `benchmarks/gpu/sweep.sh` (`EVAL_STEP=auto`, its
default, or `common`) evaluates each group there, so the rows of each table (one table per dataset, scores_table.py)
are compared at an equal budget even when the datasets' groups ran at different speeds.

    python benchmarks/sweep_steps.py SWEEP_FOLDER     # prints "GROUP_FOLDER<TAB>STEP" per group, STEP empty if none
"""

import argparse
from pathlib import Path

from sscp import checkpoint


def group_folders(sweep: Path) -> list[Path]:
    """Returns the sweep's group folders (runs/<agent>/<dataset>/<variant>) that hold checkpoints."""
    return sorted(p.parent for p in Path(sweep).glob("runs/*/*/*/checkpoints") if p.is_dir())


def common_steps(sweep: Path) -> dict[Path, int | None]:
    """Returns, for each group folder, the largest step kept by every group of its dataset (None if there is none)."""
    kept: dict[str, list[set[int]]] = {}
    groups = group_folders(sweep)
    for group in groups:
        steps = {checkpoint.step_of(p) for p in checkpoint.list_checkpoints(group / "checkpoints")}
        kept.setdefault(group.parent.name, []).append(steps)
    best = {dataset: max(set.intersection(*sets), default=None) for dataset, sets in kept.items()}
    return {group: best[group.parent.name] for group in groups}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder (`sscp sweep --out`)")
    args = parser.parse_args(argv)
    for group, step in common_steps(args.sweep).items():
        print(f"{group}\t{'' if step is None else step}")


if __name__ == "__main__":
    main()
