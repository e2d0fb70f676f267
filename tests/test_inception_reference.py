"""condgan's FID Inception-v3 against the reference implementations, on the same random weights.

The real weights (pt_inception-2015-12-05-6726825d.pth) cannot be fetched here, so one random
state dict in the reference file's layout (`test_inception.random_reference_state`) is loaded into

- condgan: `load_fid_inception(path)`, the loader evaluation uses;
- pytorch-fid: `pytorch_fid.inception.InceptionV3([3])` (pool3) and `fid_inception_v3()` (the
  patched torchvision Inception3, whose forward gives the 1008 logits). pytorch-fid fetches its
  weights with `load_state_dict_from_url`; the test replaces that one function, nothing else;
- torch-fidelity: `FeatureExtractorInceptionV3(..., feature_extractor_weights_path=path)`, which
  reads the same key layout, for pool3, logits and logits_unbiased.

pytorch-fid subclasses torchvision's Inception blocks and torch-fidelity's package imports
torchvision; PyPI's torchvision wheel is a CUDA build whose compiled ops do not load beside the
CPU torch used here. conftest.py therefore runs `torchvision_compat.make_torchvision_importable()`,
which imports the installed torchvision's own Python code with two op-metadata modules left empty
(see that module). The tests are skipped only when a reference package is not installed (it is
a test extra: `pip install -e .[test]`).

Inputs: 299×299 uint8 images, mapped as each reference maps them (pytorch-fid: x/255 in [0, 1],
then 2x - 1 inside; torch-fidelity: (x - 128) / 128), so that no resize is involved and the
features must agree to float rounding; and 28×28 gray / 32×32 RGB images for the bilinear
resize, against pytorch-fid.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from condgan.metrics.inception import FID_WEIGHTS_NAME, load_fid_inception
from test_inception import random_reference_state

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = random_reference_state(seed=3)
    path = tmp_path_factory.mktemp("ref-weights") / FID_WEIGHTS_NAME
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 256, (3, 3, 299, 299), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


@pytest.fixture(scope="module")
def pytorch_fid_nets(weights, images):
    pfi = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid is a test extra: pip install -e .[test]")
    _, state = weights
    mp = pytest.MonkeyPatch()
    mp.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: {k: v.clone() for k, v in state.items()})
    try:
        pool_net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
        full_net = pfi.fid_inception_v3().eval()
    finally:
        mp.undo()
    return pfi, pool_net, full_net


def test_pool3_and_logits_equal_pytorch_fid(weights, images, pytorch_fid_nets):
    _, pool_net, full_net = pytorch_fid_nets
    ours = load_fid_inception(weights[0])
    x01 = images.float() / 255
    with torch.no_grad():
        out = ours(2 * x01 - 1)
        ref_pool = pool_net(x01)[0].flatten(1)
        ref_logits = full_net(2 * x01 - 1)  # torchvision Inception3.forward in eval mode: fc(dropout(pool))
    assert out["pool"].shape == ref_pool.shape == (3, 2048) and ref_logits.shape == (3, 1008)
    assert out["pool"].abs().max() > 0.05  # random weights still give non-trivial activations
    torch.testing.assert_close(out["pool"], ref_pool, **TOL)
    torch.testing.assert_close(out["logits"], ref_logits, **TOL)
    torch.testing.assert_close(out["logits_unbiased"], ref_logits - full_net.fc.bias, **TOL)


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 32, 32)])
def test_resized_small_images_equal_pytorch_fid(weights, pytorch_fid_nets, shape):
    """pytorch-fid resizes [0, 1] images then maps 2x - 1; condgan resizes [-1, 1] images (affine, same up to rounding)."""
    _, pool_net, _ = pytorch_fid_nets
    ours = load_fid_inception(weights[0])
    x01 = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = ours(2 * x01 - 1)
        ref = pool_net(x01.expand(-1, 3, -1, -1))[0].flatten(1)
    torch.testing.assert_close(out["pool"], ref, **TOL)


def test_stock_torchvision_blocks_differ(weights, images, pytorch_fid_nets):
    """Control: torchvision's unpatched Inception3 on the same weights is far off, so the equality above
    checks the FID graph's pooling quirks (padding-excluding average pools, Mixed_7c max pool)."""
    pfi, pool_net, _ = pytorch_fid_nets
    stock = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    stock.load_state_dict(weights[1])
    stock.eval()
    x = 2 * images.float() / 255 - 1
    with torch.no_grad():
        ours = load_fid_inception(weights[0])(x)["logits"]
        assert (stock(x) - ours).abs().max() > 1e-3


def test_pool3_and_logits_equal_torch_fidelity(weights, images):
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3",
                             reason="torch-fidelity is a test extra: pip install -e .[test]")
    ref = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased", "logits"],
                                         feature_extractor_weights_path=str(weights[0]))
    ours = load_fid_inception(weights[0])
    with torch.no_grad():
        pool, logits_unbiased, logits = ref(images)  # uint8 in, TF1 bilinear resize (identity at 299), (x - 128) / 128
        out = ours((images.float() - 128) / 128)
    torch.testing.assert_close(out["pool"], pool, **TOL)
    torch.testing.assert_close(out["logits"], logits, **TOL)
    torch.testing.assert_close(out["logits_unbiased"], logits_unbiased, **TOL)
