"""Evaluation metrics: pure functions from features, logits or images to flat dicts of floats.

One module per metric; each module's docstring gives the definition and the reference it
matches. `METRICS` names the functions that return such a dict, for the CLI's choices (STYLE #5).
The package namespace holds the modules (`condgan.metrics.fid.fid` is the function).
"""

from typing import Callable

from condgan.metrics import (
    correlation,
    discriminability,
    diversity,
    fid,
    inception_score,
    interpolation,
    kid,
    memorization,
    prdc,
)
from condgan.registry import Registry

METRICS: Registry[Callable[..., dict[str, float]]] = Registry("metric")
for _name, _fn in (
    ("fid", fid.fid),
    ("intra_fid", fid.intra_class_fid),
    ("kid", kid.kid),
    ("prdc", prdc.prdc),
    ("inception_score", inception_score.inception_score),
    ("accuracy", discriminability.accuracy),
    ("resolution_sweep", discriminability.resolution_sweep),
    ("share_classes_full_beats_lowest", discriminability.share_classes_full_beats_lowest),
    ("diversity", diversity.diversity_report),
    ("pearson", correlation.pearson),
    ("memorization", memorization.memorization_share),
    ("jump_score", interpolation.jump_score),
):
    METRICS.add(_name, _fn)
