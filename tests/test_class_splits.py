"""Class splits: every class goes to its sub-model and back, one model to sample/resume, refusals."""

import pytest
import torch

from condgan.config import resolve_config
from condgan.errors import ConfigError
from condgan.methods import StepInputs, build_method
from condgan.methods.class_splits import ClassSplits, split_classes
from condgan.nets import DataSpec
from condgan.sampling import generate, load_run
from condgan.run.checkpoint import list_checkpoints, load_checkpoint
from condgan.training.loop import train

from ring_learning import RING, right_mode_share, train_ring

SMALL = ["model.hidden=16", "model.z_dim=4"]


def _method(*overrides, num_classes=10):
    cfg = resolve_config(overrides=[*SMALL, "method.class_splits=3", *overrides])
    torch.manual_seed(0)
    return build_method(cfg, DataSpec((2,), num_classes))


def test_split_classes():
    assert split_classes(10, 3, "contiguous", 0) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    random = split_classes(10, 3, "random", 0)
    assert sorted(c for g in random for c in g) == list(range(10)) and [len(g) for g in random] == [4, 3, 3]
    assert random == split_classes(10, 3, "random", 0) != split_classes(10, 3, "random", 1)


def test_phases_named_per_sub_model():
    method = _method()
    assert isinstance(method, ClassSplits) and method.num_classes == 10 and len(method.subs) == 3
    assert [p.name for p in method.phases()] == ["D.s0", "G.s0", "D.s1", "G.s1", "D.s2", "G.s2"]
    assert [sub.num_classes for sub in method.subs] == [4, 3, 3]
    assert method.phases()[2].module is method.subs[1].D


@pytest.mark.parametrize("mode", ["contiguous", "random"])
def test_generate_routes_each_class_to_its_sub_model_and_back(mode):
    method = _method(f"method.split_mode={mode}").eval()
    groups = method.groups()
    z = torch.randn(30, 4)
    c = torch.arange(30) % 10
    x = method.generate(z, c)
    for k in range(10):
        split = next(i for i, g in enumerate(groups) if k in g)
        local = groups[split].index(k)
        rows = c == k
        expected = method.subs[split].generate(z[rows], torch.full((int(rows.sum()),), local))
        torch.testing.assert_close(x[rows], expected)
    with pytest.raises(TypeError, match="cannot be routed"):  # class blends (interpolation) span sub-models
        method.generate(z[:2], torch.eye(10)[:2])


def test_loss_routes_real_and_generated_batches_by_class():
    method = _method()
    g = torch.Generator().manual_seed(1)
    step = StepInputs(real_x=torch.randn(40, 2, generator=g), real_c=torch.arange(40) % 10, real_idx=torch.arange(40),
                      gen_z=torch.randn(40, 4, generator=g), gen_c=(torch.arange(40) * 7) % 10, step=0)
    for i, group in enumerate(method.groups()):
        loss, _ = method.loss(method.phase(f"D.s{i}"), step)
        real = torch.isin(step.real_c, torch.tensor(group))
        gen = torch.isin(step.gen_c, torch.tensor(group))
        local = {k: j for j, k in enumerate(group)}
        by_hand = StepInputs(real_x=step.real_x[real], real_c=torch.tensor([local[int(k)] for k in step.real_c[real]]),
                             real_idx=step.real_idx[real], gen_z=step.gen_z[gen],
                             gen_c=torch.tensor([local[int(k)] for k in step.gen_c[gen]]), step=0)
        expected, _ = method.subs[i].loss(method.subs[i].phase("D"), by_hand)
        torch.testing.assert_close(loss, expected)
    # a split with none of its classes in the batch makes no update
    step = StepInputs(real_x=step.real_x[:4], real_c=torch.tensor([0, 1, 2, 3]), real_idx=torch.arange(4),
                      gen_z=step.gen_z[:4], gen_c=torch.tensor([0, 1, 2, 3]), step=1)
    loss, stats = method.loss(method.phase("D.s2"), step)
    assert loss.item() == 0.0 and stats == {}
    loss.backward()
    assert all(p.grad is None for p in method.subs[2].parameters())


def test_refusals():
    with pytest.raises(ConfigError, match="class_splits: needs a conditional method, found method.name 'gan'"):
        _method("method.name=gan")
    with pytest.raises(ConfigError, match="class_splits: expected at most the 2 classes of the data, found 3"):
        _method(num_classes=2)
    with pytest.raises(ConfigError, match="selfcond"):
        _method("method.name=selfcond")


def test_checkpoint_resume_and_sample_round_trip(tmp_path):
    common = [*RING, "model.hidden=16", "method.class_splits=2", "method.split_mode=random", "train.ckpt_every=10",
              "train.log_every=10"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(resolve_config(overrides=[*common, "train.steps=20"]), straight, progress=False)
    train(resolve_config(overrides=[*common, "train.steps=10"]), resumed, progress=False)
    train(resolve_config(overrides=[*common, "train.steps=20"]), resumed, resume=True, progress=False)  # 10 → 20
    wa = load_checkpoint(list_checkpoints(straight)[-1])["model"]
    wb = load_checkpoint(list_checkpoints(resumed)[-1])["model"]
    assert set(wa) == set(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert "split_of" in wa  # the class assignment travels with the weights

    run = load_run(resumed)
    assert isinstance(run.method, ClassSplits) and run.method.num_classes == 8 and run.step == 20
    x, labels = generate(run.method, 40, seed=3)
    assert x.shape == (40, 2) and sorted(set(labels.tolist())) == list(range(8))
    z = run.method.latent(40, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(x, run.method.generate(z, labels))


def test_acgan_splits_learn_class_placement_on_the_ring(tmp_path):
    before, after = train_ring(tmp_path, "method.name=acgan", "method.class_splits=2", "method.split_mode=random",
                               steps=200)
    assert right_mode_share(before) < 0.05
    assert right_mode_share(after) > 0.6
