"""Aggregate scores across tasks the rliable way (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
NeurIPS 2021): the interquartile mean (IQM) of all runs' scores, with a percentile confidence interval from a
stratified bootstrap that resamples runs (seeds) with replacement within each task. Written with numpy rather than
the `rliable` package, which pulls arch, pandas and seaborn."""

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Returns the interquartile mean of all values: the mean after dropping the lowest and the highest
    floor(n / 4) of the n values (scipy.stats.trim_mean(x, 0.25), as rliable computes it)."""
    values = np.sort(np.asarray(scores, np.float64).ravel())
    cut = int(0.25 * len(values))
    return float(values[cut : len(values) - cut].mean())


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """Returns the interquartile mean of each row of samples [reps, n]."""
    values = np.sort(samples, axis=1)
    cut = int(0.25 * values.shape[1])
    return values[:, cut : values.shape[1] - cut].mean(axis=1)


def stratified_bootstrap_ci(
    scores_per_task: list[np.ndarray], statistic=_iqm_rows, reps: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Returns the (low, high) percentile interval of `statistic` (a function of samples [reps, n], default the IQM)
    over `reps` stratified bootstrap resamples: each task's runs are resampled with replacement, separately."""
    rng = np.random.default_rng(seed)
    resampled = [
        np.asarray(s, np.float64)[rng.integers(0, len(s), size=(reps, len(s)))] for s in scores_per_task if len(s)
    ]
    stats = statistic(np.concatenate(resampled, axis=1))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def aggregate(scores_per_task: dict[str, np.ndarray], reps: int = 10_000, seed: int = 0) -> dict:
    """Returns {"iqm", "iqm_ci", "mean", "mean_ci", "tasks", "runs"} for one method's final scores per task."""
    per_task = [np.asarray(v, np.float64) for v in scores_per_task.values()]
    flat = np.concatenate(per_task)
    return {
        "iqm": iqm(flat),
        "iqm_ci": stratified_bootstrap_ci(per_task, _iqm_rows, reps, seed=seed),
        "mean": float(flat.mean()),
        "mean_ci": stratified_bootstrap_ci(per_task, lambda x: x.mean(axis=1), reps, seed=seed),
        "tasks": len(per_task),
        "runs": len(flat),
    }
