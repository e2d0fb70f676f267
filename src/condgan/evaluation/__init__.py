"""The evaluation suite: the metric registry and its adapters (`metrics`), one evaluation's
inputs and features (`context`), the suite function (`suite.evaluate`) and `condgan eval` (`run`)."""
