"""One metric registry: the suite's `EVAL_METRICS`; unknown names are refused and the CLI's
`--metrics` and `--method` help list every registered choice."""

import pytest

from condgan.cli import build_parser
from condgan.errors import ConfigError
from condgan.evaluation.metrics import EVAL_METRICS
from condgan.evaluation.suite import parse_metrics
from condgan.methods import METHODS


def test_registry_refuses_unknown_names():
    assert {"is", "fid", "kid", "prdc", "intra_fid", "accuracy", "diversity", "cluster_agreement"} <= set(
        EVAL_METRICS.names())
    with pytest.raises(ConfigError, match="unknown metric 'fdi'"):
        EVAL_METRICS.get("fdi")
    with pytest.raises(ConfigError, match="--metrics: unknown metric 'fdi'; expected some of: accuracy, "):
        parse_metrics("fid,fdi")


def _help(verb: str) -> str:
    parser = build_parser()
    action = next(a for a in parser._subparsers._actions if a.choices and verb in a.choices)  # noqa: SLF001
    return " ".join(action.choices[verb].format_help().split())


def test_cli_help_lists_every_registered_choice():
    eval_help, train_help = _help("eval"), _help("train")
    for name in EVAL_METRICS.names():
        assert name in eval_help
    for name in METHODS.names():
        assert name in train_help
