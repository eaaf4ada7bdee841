"""alertd: a missing-child public alert dispatcher."""

__version__ = "0.1.0"
