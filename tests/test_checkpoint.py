import os

import pytest
import torch
from torch import nn

from condgan.config import Config
from condgan.errors import CheckpointError, WriteError
from condgan.run import checkpoint as ck

# What every checkpoint's meta holds (training.loop.checkpoint_meta); validated on load.
META = {"sample_shape": [2], "num_classes": 1, "num_samples": 0, "class_names": ["a"], "config": Config().to_dict()}


def _model(width=4):
    return nn.Sequential(nn.Linear(3, width), nn.Linear(width, 1))


def _save(run, step, model=None, keep=3):
    model = model or _model()
    opt = torch.optim.Adam(model.parameters())
    return ck.save_checkpoint(run, step, model, {"G": opt}, META, keep)


def test_round_trip_and_pruning(tmp_path):
    model = _model()
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, model, keep=2)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt-00000030.pt", "ckpt-00000040.pt"]
    state = ck.load_checkpoint(ck.latest_checkpoint(tmp_path))
    assert state["step"] == 40 and state["meta"] == META
    fresh = _model()
    ck.load_model_state(fresh, state["model"], tmp_path)
    for a, b in zip(fresh.parameters(), model.parameters()):
        assert torch.equal(a, b)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['CONDGAN_MARKER']}",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CONDGAN_MARKER", str(marker))
    path = tmp_path / "ckpt-00000001.pt"
    torch.save({"step": 1, "model": _Evil(), "optimizers": {}, "meta": {}}, path)
    with pytest.raises(CheckpointError, match="ckpt-00000001.pt"):
        ck.load_checkpoint(path)
    assert not marker.exists()


def test_other_architecture_is_named(tmp_path):
    path = _save(tmp_path, 1, _model(4))
    state = ck.load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"another architecture: 0.weight expected shape \(8, 3\), found \(4, 3\)"):
        ck.load_model_state(_model(8), state["model"], path)


def test_garbage_file_is_named(tmp_path):
    path = tmp_path / "ckpt-00000001.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="ckpt-00000001.pt"):
        ck.load_checkpoint(path)


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    good = _save(tmp_path, 1)
    before = good.read_bytes()

    def full_disk(self, data):
        open(self, "wb").write(data[:4])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(good), "write_bytes", full_disk)
    with pytest.raises(WriteError, match=r"ckpt-00000002.pt: cannot write \(No space left on device\)"):
        _save(tmp_path, 2)
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["ckpt-00000001.pt"]
    assert good.read_bytes() == before
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_non_finite_state_is_never_written(tmp_path):
    good = _save(tmp_path, 1)
    model = _model()
    with torch.no_grad():
        model[1].bias.fill_(float("nan"))
    with pytest.raises(ck.NonFiniteState, match=r"step 2: non-finite values in model.1.bias \(1 of 1 values\)"):
        _save(tmp_path, 2, model)
    assert ck.list_checkpoints(tmp_path) == [good]
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name != good.name]


def test_non_finite_optimiser_state_is_never_written(tmp_path):
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    opt.state[model[0].weight]["exp_avg_sq"][0, 0] = float("inf")
    with pytest.raises(ck.NonFiniteState, match=r"optimizers.G.state.0.exp_avg_sq"):
        ck.save_checkpoint(tmp_path, 1, model, {"G": opt}, {}, 3)
    assert ck.list_checkpoints(tmp_path) == []


def test_old_checkpoint_with_nan_weights_is_refused_on_load(tmp_path):
    path = _save(tmp_path, 1)
    state = torch.load(path, weights_only=True)
    state["model"]["0.weight"][0, 0] = float("nan")
    torch.save(state, path)  # as a version without the check would have written it
    with pytest.raises(ck.NonFiniteState, match=r"ckpt-00000001.pt: holds non-finite values in model.0.weight"):
        ck.load_checkpoint(path)


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    from condgan.io import atomic_write_bytes

    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "f.bin", b"x")
        assert (path.stat().st_mode & 0o777) == 0o644  # like any new file, not mkstemp's 0600
    finally:
        os.umask(old)
