"""Data: load, validate, profile and split a user's table; the bundled datasets; the study.

One idea per module: `loading` (read files), `kinds` (column kinds), `spec` (DatasetSpec and
its validation), `pii` (personal data), `proxies` (features standing in for a sensitive
attribute), `profile` (column and group summaries), `split` (train/validation/test),
`source` (bundled name or file path), `datasets` (the bundled examples), `features` (the
tabular encoder), `study` (one table + spec + split + fitted encoder), `mapped` (arrays kept
on disk and memory-mapped, handed to worker tasks as handles).

The names below are imported on first use (PEP 562), so `import core.data.datasets` does
not load scikit-learn: `equiscope datasets` starts in a fraction of a second.
"""

from importlib import import_module

_EXPORTS = {
    "MAX_UPLOAD_BYTES": "loading", "LoadedTable": "loading", "read_table": "loading",
    "profile_columns": "profile", "profile_groups": "profile",
    "ProxyFinding": "proxies", "find_proxies": "proxies",
    "PiiFinding": "pii", "scan_pii": "pii",
    "DataSource": "source", "open_source": "source",
    "DatasetSpec": "spec", "PreparedData": "spec", "prepare": "spec",
    "Split": "split", "make_split": "split",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"core.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'core.data' has no attribute {name!r}")
