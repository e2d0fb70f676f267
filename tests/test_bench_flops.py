"""condgan.bench.flops: FLOP totals that also count through R1's double backward."""

import torch
from torch import nn

from condgan.bench.flops import count_flops
from condgan.methods.recipe import r1_penalty


def test_counts_a_linear_layer_by_hand():
    """Linear 4 → 3 on a batch of 2: 2·2·4·3 = 48 FLOPs forward; backward adds the input and weight
    gradients, 48 each."""
    layer, x = nn.Linear(4, 3), torch.randn(2, 4, requires_grad=True)
    assert count_flops(lambda: layer(x)) == 48
    assert count_flops(lambda: layer(x).sum().backward()) == 3 * 48


def test_counts_through_the_r1_penalty():
    """torch's own counter fails inside autograd.grad; this one counts the penalty's double backward
    on top of the plain forward and backward."""
    d = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(5, 4, requires_grad=True)
    plain = count_flops(lambda: d(x).sum().backward())
    with_r1 = count_flops(lambda: (d(x).sum() + r1_penalty(d(x).squeeze(1), x)).backward())
    assert with_r1 > plain > 0
