"""Alignment and evaluation harness: tune -> evaluate -> align, with gated promotion."""

from harness.errors import HarnessError

__all__ = ["HarnessError", "__version__"]
__version__ = "0.1.0"
