"""benchmarks/gemm_rate.py: the matrix-product chains it times compute what they claim."""

import jax
import numpy as np
import pytest

from benchmarks import gemm_rate


def test_gemm_rate_programs_compute_the_chained_products():
    """benchmarks/gemm_rate.py times chains that XLA cannot skip or merge: x @ w applied `iters` times, and the sum
    of x_i^T x_i with x_i = x + i (a carried operand that changes, so no product is hoisted or merged); each row
    prices 2·stack·rows·width² FLOP per product."""
    iters = 3
    progs = gemm_rate.programs(stack=2, rows=8, width=4, dtype="float32", iters=iters)
    activation, (x, w) = progs["activation"]
    expected = np.asarray(x)
    for _ in range(iters):
        expected = np.einsum("sbi,sij->sbj", expected, np.asarray(w))
    np.testing.assert_allclose(np.asarray(activation(x, w)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w[0] @ w[0].T), np.eye(4), atol=1e-5)  # orthogonal: values stay finite
    weight_grad, args = progs["weight_grad"]
    grams = sum(np.einsum("sbi,sbj->sij", np.asarray(x) + i, np.asarray(x) + i) for i in range(iters))
    np.testing.assert_allclose(np.asarray(weight_grad(*args)), grams, rtol=1e-4, atol=1e-4)
    rows = gemm_rate.measure(stack=2, rows=8, width=4, dtype="float32", iters=iters, repeats=1)
    assert [r["product"] for r in rows] == ["activation", "weight_grad"]
    r = rows[0]
    assert r["tflops_wall"] == pytest.approx(2 * 2 * 8 * 16 * iters / (r["us_per_product_wall"] * 1e-6 * iters) / 1e12)
    if jax.default_backend() == "cpu":  # the trace is read, and a CPU trace has no GPU kernels to count
        assert gemm_rate.gemm_kernel_seconds(activation, (x, w)) == (0.0, 0) and "tflops_kernels" not in r
