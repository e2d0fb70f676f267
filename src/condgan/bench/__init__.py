"""Benchmarks that train many runs and print a paper's table (CLI: `condgan bench ...`)."""
