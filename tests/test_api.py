"""Every Python example in docs/api.md runs as written (on a small generated dataset and judge)."""

import re
from pathlib import Path

import pytest

from cli_data import write_fashion_like
from condgan.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 4


def test_documented_examples_run(tmp_path, monkeypatch):
    data = write_fashion_like(tmp_path / "data", n=300)
    monkeypatch.setenv("CONDGAN_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    # The default (cached) judge of the dataset, as `condgan classifier train` makes it.
    assert main(["classifier", "train", "--data", "fashion-mnist", "--epochs", "1", "--no-progress"]) == 0
    namespace: dict = {}
    for i, block in enumerate(BLOCKS):
        exec(compile(block, f"{DOC.name} example {i + 1}", "exec"), namespace)  # noqa: S102
    assert namespace["run"].steps == 20 and (tmp_path / "runs" / "api" / "samples.npz").is_file()
    assert namespace["samples"].label_kind == "class" and len(namespace["samples"]) == 1000
    assert "accuracy" in namespace["unlabelled"]["skipped"] and "fid" in namespace["unlabelled"]["keys"]
    assert 0.0 < namespace["clusters"]["metrics"]["cluster_agreement"] <= 1.0
    assert sorted(namespace["by_stats"]["keys"]) == ["fid", "intra_fid", "is"]


def test_evaluate_refuses_bad_arrays_by_name():
    import numpy as np

    import condgan
    from condgan.errors import SamplesError

    with pytest.raises(SamplesError, match="images: expected uint8 N×H×W×C, found float64"):
        condgan.evaluate(np.zeros((4, 28, 28, 1)), "fashion-mnist", labels=np.zeros(4, dtype=np.int64))
