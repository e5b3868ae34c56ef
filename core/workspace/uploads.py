"""Keep a reviewer's uploaded table inside the workspace, safely.

`save_upload(root, data, filename)` writes the bytes to
`<root>/uploads/<sha256[:16]>-<safe name>` and returns that path. Rules, and why:

- The name a browser sends is untrusted text. Only its last path component is kept, it is
  Unicode-normalised (NFKC), every character outside `A-Z a-z 0-9 . _ -` becomes `_`,
  leading dots are removed (no hidden files, no `..`), and it is cut to `MAX_NAME_CHARS`
  keeping the extension. The path is built by Equiscope, never taken from the user, and is
  checked to lie inside `<root>/uploads/`.
- Size is capped at `LARGEST_UPLOAD_BYTES` (the loader's largest limit, Parquet's; the loader then applies each format's own) before anything is written.
- Content addressing (sha256 prefix) makes the same upload map to the same file: saving it
  twice writes once, and two different files with the same name never overwrite each other.
- The write is atomic (temporary file + fsync + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from core.data.loading import LARGEST_UPLOAD_BYTES
from core.errors import InputError
from core.files import atomic_write

UPLOADS_DIR = "uploads"
MAX_NAME_CHARS = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(filename: str, fallback: str = "upload") -> str:
    """A file-system-safe version of an untrusted file name (rules in the module docstring)."""
    text = unicodedata.normalize("NFKC", str(filename or ""))
    text = re.split(r"[/\\]", text)[-1]  # last path component, for either separator
    text = _UNSAFE.sub("_", text).strip("._ ")
    text = re.sub(r"_{2,}", "_", text)
    if not text or set(text) <= {".", "_", "-"}:
        text = fallback
    if len(text) > MAX_NAME_CHARS:
        stem, dot, suffix = text.rpartition(".")
        if dot and 0 < len(suffix) <= 10 and stem:
            text = f"{stem[:MAX_NAME_CHARS - len(suffix) - 1]}.{suffix}"
        else:
            text = text[:MAX_NAME_CHARS]
    return text


def upload_path(root: Path | str, data: bytes, filename: str) -> Path:
    """Where `save_upload` stores `data`: `<root>/uploads/<sha256[:16]>-<safe name>`."""
    digest = hashlib.sha256(data).hexdigest()
    return Path(root).resolve() / UPLOADS_DIR / f"{digest[:16]}-{safe_file_name(filename)}"


def save_upload(root: Path | str, data: bytes, filename: str, max_bytes: int = LARGEST_UPLOAD_BYTES) -> Path:
    """Store uploaded bytes in the workspace `root` and return the stored file's path.

    Raises InputError for an empty or too large upload; nothing is written then.
    """
    safe_name = safe_file_name(filename)
    if len(data) > max_bytes:
        raise InputError(f"'{safe_name}' is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}",
                         "Sample the rows (or drop unused columns) and upload the smaller file")
    if len(data) == 0:
        raise InputError(f"'{safe_name}' is empty", "Choose a file that holds a table with a header row")
    folder = Path(root).resolve() / UPLOADS_DIR
    path = upload_path(root, data, filename)
    if path.parent != folder:  # defence in depth: the sanitiser should make this impossible
        raise InputError(f"Refusing to store the upload '{safe_name}' outside the workspace",
                         "Rename the file to a plain name such as data.csv")
    if path.exists() and path.stat().st_size == len(data):
        return path  # same content, same name: already stored
    try:
        atomic_write(path, data)
    except OSError as error:
        raise InputError(f"Cannot store '{safe_name}' in the workspace ({error.strerror})",
                         "Check that the workspace folder is writable and the disk is not full") from None
    return path


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MB"
