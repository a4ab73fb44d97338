"""The expressiveness benchmark's metrics separate a multimodal sampler from a collapsed one."""

import numpy as np

from benchmarks import expressiveness


def test_metrics_reward_coverage_and_punish_collapse():
    rng = np.random.default_rng(0)
    states = np.linspace(-1, 1, 8).astype(np.float32)
    sample = expressiveness.sample_data
    data_like = np.stack([np.stack([sample(rng, np.full(1, s))[0] for _ in range(64)]) for s in states])
    good = expressiveness.metrics(data_like, states, np.random.default_rng(1))
    conditional_mean = np.zeros_like(data_like)
    collapsed = expressiveness.metrics(conditional_mean, states, np.random.default_rng(1))
    assert good["near_mode_fraction"] > 0.95 and good["modes_covered"] > expressiveness.MODES - 0.5
    assert collapsed["near_mode_fraction"] == 0.0 and collapsed["modes_covered"] == 0.0
    assert good["energy_distance"] < 0.05 < collapsed["energy_distance"]
