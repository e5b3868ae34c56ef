"""Load, validate, profile and split a user's table.

One idea per module: `loading` (read files), `kinds` (column kinds), `spec` (DatasetSpec and
its validation), `pii` (personal data), `proxies` (features standing in for a sensitive
attribute), `profile` (column and group summaries), `split` (train/validation/test),
`source` (bundled name or file path).
"""

from core.data.loading import MAX_UPLOAD_BYTES, LoadedTable, read_table
from core.data.profile import profile_columns, profile_groups
from core.data.proxies import ProxyFinding, find_proxies
from core.data.pii import PiiFinding, scan_pii
from core.data.source import DataSource, open_source
from core.data.spec import DatasetSpec, PreparedData, prepare
from core.data.split import Split, make_split

__all__ = ["MAX_UPLOAD_BYTES", "DataSource", "DatasetSpec", "LoadedTable", "PiiFinding", "PreparedData",
           "ProxyFinding", "Split", "find_proxies", "make_split", "open_source", "prepare",
           "profile_columns", "profile_groups", "read_table", "scan_pii"]
