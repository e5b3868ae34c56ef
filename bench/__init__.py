"""Benchmarks of Equiscope against its peers; `python -m bench` runs them all (see __main__)."""
