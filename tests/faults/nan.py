"""Fault 4: NaN in an update; the default stops naming the step, --on-nonfinite skip finishes with finite
parameters."""

import contextlib
import functools
import re
from collections.abc import Callable, Iterator

import numpy as np

from .evidence import all_finite, ckpt_steps, csv_steps, describe_stderr, one_line_error
from .lab import LOG_EVERY, SAVE_EVERY, STEPS, Lab, Row, check, patched


def _adam_count(opt_state):
    """Returns the update count Adam keeps in opt_state."""
    import jax

    paths = jax.tree_util.tree_leaves_with_path(opt_state)
    return next(leaf for path, leaf in paths if "count" in jax.tree_util.keystr(path))


@contextlib.contextmanager
def poisoned_update(bad_when: Callable) -> Iterator[None]:
    """Patches SSCPAgent.update so that where bad_when(agent_before, agent_after) holds, grad_norm and every parameter
    become NaN (what a NaN gradient does; the losses of that update are still finite); tests/test_train.py uses it
    too."""
    import jax
    import jax.numpy as jnp

    from sscp.agents.sscp import SSCPAgent

    original = SSCPAgent.update

    def update(self, batch):
        agent, info = original(self, batch)
        nan = jnp.where(bad_when(self, agent), jnp.nan, 0.0)
        agent = agent.replace(params=jax.tree.map(lambda x: x + nan, agent.params))
        return agent, {**info, "grad_norm": info["grad_norm"] + nan}

    with patched(SSCPAgent, "update", update):
        yield


def _stop_trial(lab: Lab, rng: np.random.Generator, notes: list[str]) -> str:
    """One trial: NaN in the update of a random step after the first checkpoint, with the default (stop)."""
    from sscp import checkpoint

    bad = int(rng.integers(SAVE_EVERY + 1, STEPS + 1))
    run = lab.fresh("nan")
    with poisoned_update(lambda before, after: _adam_count(after.opt_state) == bad):
        code, _, err = lab.cli(lab.train_args(run))
    line = one_line_error(err)
    check(line is not None, f"`sscp train` printed {describe_stderr(err)}")
    check(code == 1, f"exit code {code}")
    check(
        re.match(rf"sscp: error: \S+ became (nan|inf|-inf) at step {bad} \(run 0: ", line) is not None,
        f"the error does not name step {bad}: {line}",
    )
    check(str(run / "checkpoints") in line, f"the error does not name the checkpoints folder: {line}")
    last_chunk, last_save = (bad - 1) // LOG_EVERY * LOG_EVERY, (bad - 1) // SAVE_EVERY * SAVE_EVERY
    logged = csv_steps(run)
    check(max(logged, default=0) == last_chunk, f"train.csv ends at {max(logged, default=0)}, not {last_chunk}")
    check(ckpt_steps(run)[-1:] == [last_save], f"checkpoints {ckpt_steps(run)}; expected the newest {last_save}")
    restored = checkpoint.load_latest(run / "checkpoints", lab.template())
    check(restored is not None and restored[0] == last_save, "the last good checkpoint does not load")
    check(all_finite(restored[1]), "the last good checkpoint holds NaN or inf")
    notes.append(f"NaN at step {bad}, kept checkpoint {last_save}")
    return "clear error"


def _skip_trial(lab: Lab, rng: np.random.Generator, notes: list[str]) -> str:
    """One trial: NaN in a random 5-30 % of updates, with --on-nonfinite skip."""
    import jax

    from sscp import checkpoint
    from sscp.runlog import read_csv

    rate, salt = float(rng.uniform(0.05, 0.3)), int(rng.integers(1, 2**16))
    run = lab.fresh("nan-skip")
    with poisoned_update(lambda before, after: jax.random.bernoulli(jax.random.fold_in(before.rng, salt), rate)):
        code, _, err = lab.cli(lab.train_args(run, "--on-nonfinite", "skip"))
    check(code == 0, f"the run failed ({code}): {describe_stderr(err)}")
    rows = read_csv(run / "train.csv")
    check([int(r["step"]) for r in rows] == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY)), "steps missing")
    skipped = [float(r["train/skipped"]) for r in rows]
    check(sum(skipped) > 0 and all(0 <= s < 1 for s in skipped), f"train/skipped is {skipped}")
    losses = [float(r[k]) for r in rows for k in r if k.startswith("train/")]
    check(all(np.isfinite(losses)), "a logged train/* value is not finite")
    restored = checkpoint.load_latest(run / "checkpoints", lab.template())
    check(restored is not None and restored[0] == STEPS, "the final checkpoint does not load")
    check(all_finite(restored[1]), "the final parameters hold NaN or inf")
    notes.append(f"{np.mean(skipped):.0%} of updates skipped")
    return "data intact"


def fault_nan(lab: Lab, trials: int, rng: np.random.Generator) -> list[Row]:
    """NaN at a random update: the default stops naming the step; --on-nonfinite skip finishes with finite params."""
    stop_row = Row(
        "NaN in the update of a random step (default --on-nonfinite stop)",
        "one line `sscp: error:` naming the step and the checkpoints folder, exit 1; train.csv ends at the chunk "
        "before; the newest checkpoint is the last one before the step, loads, and is finite",
    )
    skip_row = Row(
        "NaN in 5-30 % of updates at random, --on-nonfinite skip",
        "the run completes; final parameters finite; train/skipped > 0 and < 1 per chunk; every logged train/* "
        "value finite",
    )
    for _ in range(trials):
        stop_row.trial(functools.partial(_stop_trial, lab, rng), lab.log)
    for _ in range(trials):
        skip_row.trial(functools.partial(_skip_trial, lab, rng), lab.log)
    return [stop_row, skip_row]
