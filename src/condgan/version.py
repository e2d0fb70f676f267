"""The package version, in its own module so that code inside the package can read it without
importing the package's face (`condgan/__init__.py`, which imports the public API)."""

__version__ = "0.1.0"
