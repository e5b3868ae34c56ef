"""Fairness audit of a model's predictions: see fairness.py, bootstrap.py and docs/metrics.md."""
