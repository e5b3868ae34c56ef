"""Equiscope's engine: data, self-supervised training, fairness audit. Never imports the UI."""

__version__ = "0.1.0"
