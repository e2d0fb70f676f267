"""condgan: class-conditional GANs (AC-GAN and relatives) and the metrics that judge them."""

from condgan.version import __version__

__all__ = ["__version__"]
