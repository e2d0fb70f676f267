"""condgan: class-conditional GANs (AC-GAN and relatives) and the metrics that judge them."""

__version__ = "0.1.0"
