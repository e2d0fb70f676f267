"""The metric registry names every dict-returning metric and refuses unknown names."""

import pytest

from condgan.errors import ConfigError
from condgan.metrics import METRICS
from condgan.metrics.fid import fid


def test_registry_lists_metrics_and_refuses_unknown_names():
    assert {"fid", "intra_fid", "kid", "prdc", "inception_score", "accuracy", "diversity"} <= set(METRICS.names())
    assert METRICS.get("fid") is fid
    with pytest.raises(ConfigError, match="unknown metric 'fdi'"):
        METRICS.get("fdi")
