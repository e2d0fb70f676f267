"""Evaluation metrics: pure functions from features, logits or images to flat dicts of floats.

One module per metric; each module's docstring gives the definition and the reference it
matches. The suite's registry of metrics (the names `condgan eval --metrics` takes) is
`condgan.evaluation.metrics.EVAL_METRICS`.
"""
