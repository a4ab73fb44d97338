"""benchmarks/flops.py: the FLOP count of one update, read from the compiled program."""

import pytest

from benchmarks import flops


@pytest.mark.slow
def test_flops_per_update_grows_with_the_batch_as_the_matrix_products_do():
    small, large = (flops.flops_per_update("sscp", b, (32, 32), transitions=500) for b in (64, 128))
    assert small > 0 and 1.9 < large / small < 2.1
    assert 0 < flops.matmul_flops_per_update("sscp", 64, (32, 32), transitions=500) <= small
