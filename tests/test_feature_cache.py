"""The real-feature cache is keyed by content: other images under the same name and size, damaged
entries and entries with a stale key are recomputed, never trusted and never fatal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condgan.data import LabelledData
from condgan.metrics.features import Extractor, cache_key, real_features


class CountingExtractor(Extractor):
    """Features: per-image mean and std; logits: 3 fixed projections. Counts the images it sees."""

    def __init__(self, ident: str = "fake:0123456789ab") -> None:
        self.seen = 0
        proj = torch.linspace(-1, 1, 3 * 16).view(16, 3)

        def forward(x):
            self.seen += len(x)
            flat = x.flatten(1)
            return torch.stack([flat.mean(1), flat.std(1)], 1), flat[:, :16] @ proj

        super().__init__(ident, forward, torch.device("cpu"))


def data(seed: int, n: int = 12, name: str = "fashion-mnist") -> LabelledData:
    gen = torch.Generator().manual_seed(seed)
    return LabelledData(torch.rand(n, 1, 8, 8, generator=gen) * 2 - 1, torch.arange(n) % 3, ("a", "b", "c"), name)


def fresh(d: LabelledData, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
    return ex.extract(d.x(), progress=False)


def test_same_name_and_size_other_content_is_recomputed(tmp_path):
    ex = CountingExtractor()
    a, b = data(0), data(1)
    assert real_features(a, "test", ex, cache_dir=tmp_path, progress=False)[2] is False
    feats, logits, hit = real_features(b, "test", ex, cache_dir=tmp_path, progress=False)
    assert hit is False  # the old code reused a's features here (same name, same row count)
    want_f, want_l = fresh(b, CountingExtractor())
    np.testing.assert_array_equal(feats, want_f)
    np.testing.assert_array_equal(logits, want_l)
    seen = ex.seen
    f_a, _, hit_a = real_features(a, "test", ex, cache_dir=tmp_path, progress=False)
    assert hit_a is True and ex.seen == seen  # the original data still hits its own entry
    np.testing.assert_array_equal(f_a, fresh(a, CountingExtractor())[0])


def test_key_covers_preprocessing_and_extractor():
    d = data(0)
    assert cache_key(d.x(), "e1") == cache_key(d.x().clone(), "e1")
    assert cache_key(d.x(), "e1") != cache_key(d.x(), "e2")
    assert cache_key(d.x(), "e1") != cache_key(torch.nn.functional.interpolate(d.x(), size=(4, 4)), "e1")
    assert cache_key(d.x(), "e1") != cache_key(d.x().repeat(1, 3, 1, 1), "e1")
    assert cache_key(d.x(), "e1") != cache_key(d.x().reshape(12, 1, 4, 16), "e1")  # same bytes, other shape


def _entry(tmp_path):
    (path,) = tmp_path.glob("*.npz")
    return path


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "wrong_shapes", "non_finite", "no_key",
                                    "pickled"])
def test_damaged_entry_is_recomputed_and_rewritten(tmp_path, damage):
    ex, d = CountingExtractor(), data(0)
    real_features(d, "test", ex, cache_dir=tmp_path, progress=False)
    path = _entry(tmp_path)
    raw = path.read_bytes()
    key = np.array(cache_key(d.x(), ex.id))
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 50)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_shapes":
        np.savez(path, features=np.zeros((5, 2), np.float32), logits=np.zeros((5, 3), np.float32), key=key)
    elif damage == "non_finite":
        np.savez(path, features=np.full((12, 2), np.nan, np.float32), logits=np.zeros((12, 3), np.float32), key=key)
    elif damage == "no_key":
        np.savez(path, features=np.zeros((12, 2), np.float32), logits=np.zeros((12, 3), np.float32))
    elif damage == "pickled":
        np.savez(path, features=np.array([{"a": 1}], dtype=object), logits=np.zeros((12, 3), np.float32), key=key)
    seen = ex.seen
    feats, _, hit = real_features(d, "test", ex, cache_dir=tmp_path, progress=False)
    assert hit is False and ex.seen == seen + 12
    np.testing.assert_array_equal(feats, fresh(d, CountingExtractor())[0])
    assert real_features(d, "test", ex, cache_dir=tmp_path, progress=False)[2] is True  # rewritten


def test_entry_with_a_stale_key_is_not_used(tmp_path):
    ex, d = CountingExtractor(), data(0)
    real_features(d, "test", ex, cache_dir=tmp_path, progress=False)
    path = _entry(tmp_path)
    # Right name, right shapes and dtypes, values of other images, and the key they were made with.
    wrong_f, wrong_l = fresh(data(1), CountingExtractor())
    np.savez(path, features=wrong_f, logits=wrong_l, key=np.array(cache_key(data(1).x(), ex.id)))
    feats, _, hit = real_features(d, "test", ex, cache_dir=tmp_path, progress=False)
    assert hit is False
    np.testing.assert_array_equal(feats, fresh(d, CountingExtractor())[0])


def test_other_extractor_misses(tmp_path):
    d = data(0)
    real_features(d, "test", CountingExtractor("fake:aaaaaaaaaaaa"), cache_dir=tmp_path, progress=False)
    assert real_features(d, "test", CountingExtractor("fake:bbbbbbbbbbbb"), cache_dir=tmp_path,
                         progress=False)[2] is False


def test_unwritable_cache_warns_and_still_returns_features(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    d = data(0)
    with pytest.warns(UserWarning, match="feature cache not written"):
        feats, _, hit = real_features(d, "test", CountingExtractor(), cache_dir=blocker / "cache", progress=False)
    assert hit is False
    np.testing.assert_array_equal(feats, fresh(d, CountingExtractor())[0])
