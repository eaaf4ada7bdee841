"""Alerts: the content an officer raises, its approval, and its immutable published versions."""
