"""Arithmetic per training update (XLA's cost analysis of the compiled step), and what a target rate would need.

    python benchmarks/flops.py --out benchmarks/results/flops-cpu.json          # sscp, batch 1024, 4 x 512
    python benchmarks/flops.py --agent sscp fql --target 2000 10000

XLA counts a scan's loop body once, so the step is compiled as a one-update chunk. The count depends on the program,
not on the device; `needed_tflops` is target x FLOP per update, to compare with a GPU's peak.
"""

import argparse
import functools
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jax  # noqa: E402

from benchmarks.throughput import emit, provenance, setup, synthetic_data  # noqa: E402
from sscp.steps import make_step_fn  # noqa: E402


@functools.cache
def _setup(agent: str, batch: int, hidden: tuple, transitions: int):
    """Returns (setup's agents, tasks, data and chunk, the agent options), built once per argument set: both counts
    below read the same program."""
    options = {"batch_size": batch}
    if agent == "sscp":
        options |= {"actor_hidden_dims": hidden, "critic_hidden_dims": hidden}
    return setup(agent, 1, synthetic_data(transitions, 40, 5), options), options


def flops_per_update(agent: str, batch: int, hidden: tuple, transitions: int = 20_000) -> float:
    """Returns XLA's FLOP count of one update of one seed (the training step: sampling and update)."""
    (agents, tasks, data, chunk), _ = _setup(agent, batch, hidden, transitions)
    cost = chunk.lower(agents, tasks, data, 1).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def matmul_flops_per_update(agent: str, batch: int, hidden: tuple, transitions: int = 20_000) -> float:
    """Returns 2 x the multiply-adds of every matrix product (dot_general) in one update of one seed's program."""
    (agents, tasks, data, _), options = _setup(agent, batch, hidden, transitions)
    one = jax.tree.map(lambda x: x[0], agents)
    step = make_step_fn(options["batch_size"], False)
    return _dot_flops(jax.make_jaxpr(lambda a: step(a, tasks[0], data))(one).jaxpr)


def _dot_flops(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            k = math.prod(eqn.invars[0].aval.shape[i] for i in contract)
            total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * k
        for param in eqn.params.values():  # the bodies of jit, scan, cond, custom_vjp ... calls
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _dot_flops(inner)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", nargs="+", default=["sscp"])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512], help="sscp's networks")
    p.add_argument("--target", type=float, nargs="+", default=[2000, 10000], help="updates/s to price")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    rows: list[dict] = []
    for agent in a.agent:
        flops = flops_per_update(agent, a.batch, tuple(a.hidden))
        matmul = matmul_flops_per_update(agent, a.batch, tuple(a.hidden))
        row = {
            "benchmark": "flops",
            "agent": agent,
            "batch": a.batch,
            "hidden": list(a.hidden) if agent == "sscp" else "agent default",
            "gflop_per_update": round(flops / 1e9, 3),
            "matmul_gflop_per_update": round(matmul / 1e9, 3),
            "needed_tflops": {f"{t:g}": round(t * flops / 1e12, 1) for t in a.target},
            **provenance(),
        }
        emit(row, rows, old, a.out)


if __name__ == "__main__":
    main()
