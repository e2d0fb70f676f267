"""condgan.bench.flops: FLOP totals that also count through R1's double backward."""

import torch
from torch import nn

from condgan.bench.flops import count_flops, training_step_flops
from condgan.config import resolve_config
from condgan.methods import StepInputs, build_method
from condgan.methods.recipe import r1_penalty
from condgan.nets import DataSpec


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


def test_a_training_step_freezes_what_the_loop_freezes():
    """G's phase backpropagates through D without D's weight gradients, as in the loop: the step costs
    less than every phase's forward and backward with all parameters trainable."""
    cfg = resolve_config(overrides=["data.name=ring", "method.name=gan", "train.batch_size=16"])
    method = build_method(cfg, DataSpec((2,), 0))
    b = cfg.train.batch_size

    def inputs() -> StepInputs:  # fresh each time: a step's generator forward is shared by its phases
        gen = torch.Generator().manual_seed(0)
        return StepInputs(torch.randn(b, 2, generator=gen), torch.zeros(b, dtype=torch.long), torch.arange(b),
                          method.latent(b, generator=gen), torch.zeros(b, dtype=torch.long), 0)

    frozen = training_step_flops(method, inputs())
    for q in method.parameters():
        q.requires_grad_(True)
    step = inputs()
    everything = count_flops(lambda: [method.loss(p, step)[0].backward(retain_graph=True) for p in method.phases()])
    assert 0 < frozen < everything
