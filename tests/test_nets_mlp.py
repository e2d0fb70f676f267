"""The 2D nets: the Self-Conditioned GAN code's maxout D and BatchNorm G (`model.arch=mlp_selfcond`)."""

from __future__ import annotations

import pytest
import torch

from condgan.config import resolve_config
from condgan.methods import build_method
from condgan.nets import DataSpec, build_pair
from condgan.nets.mlp import Maxout, MaxoutDiscriminator, SelfCondGenerator
from condgan.run.checkpoint import load_checkpoint
from condgan.training.loop import train


def test_maxout_is_the_max_over_each_units_pieces():
    torch.manual_seed(0)
    layer = Maxout(3, 4, pieces=5)
    x = torch.randn(6, 3)
    full = x @ layer.linear.weight.T + layer.linear.bias  # 6 × 20, unit u owns columns 5u..5u+4
    expected = torch.stack([full[:, 5 * u:5 * u + 5].max(dim=1).values for u in range(4)], dim=1)
    torch.testing.assert_close(layer(x), expected)


def test_sizes_are_the_official_2d_nets():
    G, D = build_pair(resolve_config(overrides=["model.arch=mlp_selfcond", "model.z_dim=2"]).model, DataSpec((2,), 50), 50)
    assert isinstance(G, SelfCondGenerator) and isinstance(D, MaxoutDiscriminator)
    # G: 32-d class embedding, 4 × (Linear 400 + BatchNorm + ReLU), Linear to 2.
    linears = [m for m in G.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(34, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.net) == 4
    # D: 3 maxout layers of 200 units × 5 pieces; its features (what Self-Cond GAN clusters) are 200-d.
    assert [(m.linear.in_features, m.out, m.pieces) for m in D.body] == [(2, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert D.features(torch.randn(7, 2)).shape == (7, 200)
    # Class embeddings enter G at unit length: scaling an embedding changes nothing.
    G.eval()
    z, c = torch.randn(4, 2), torch.tensor([0, 1, 2, 3])
    before = G(z, c)
    with torch.no_grad():
        G.embed.weight.mul_(7.0)
    torch.testing.assert_close(G(z, c), before)


def test_refused_for_images():
    cfg = resolve_config(overrides=["model.arch=mlp_selfcond"])
    with pytest.raises(Exception, match="model.arch: 'mlp_selfcond' cannot model images"):
        build_pair(cfg.model, DataSpec((1, 28, 28), 10), 10)


@pytest.mark.parametrize("method", ["gan", "cgan", "acgan", "selfcond"])
def test_every_method_trains_with_them(tmp_path, method):
    extra = ["method.num_clusters=8", "method.recluster_every=5", "method.cluster_fit_size=200"] if method == "selfcond" else []
    cfg = resolve_config(overrides=["data.name=ring", "data.num_samples=500", "model.arch=mlp_selfcond", "model.z_dim=2",
                                    "train.steps=6", "train.batch_size=50", "train.grid_every=6", "train.ckpt_every=6",
                                    f"method.name={method}", *extra])
    torch.manual_seed(0)
    init = build_method(cfg, DataSpec((2,), 8, 500)).state_dict()
    result = train(cfg, tmp_path / "run", progress=False)
    trained = load_checkpoint(result.checkpoint)["model"]
    moved = [k for k, v in init.items() if v.is_floating_point() and not torch.equal(v, trained[k])]
    assert any(k.startswith("G.") for k in moved) and any(k.startswith("D.") for k in moved)
