"""Writing files so that nothing is ever half-written, and the errors a user can act on.

    atomic_write(path, data)          temporary file + fsync + rename: a reader sees the old
                                      file or the new one, never half
    remove_stale_temporaries(path)    clean up after writers that were killed mid-write
    storage_input_error(error)        an OSError of a full or read-only disk as an InputError

Every artifact Equiscope writes (run folders, checkpoints, models, uploads) goes through
`atomic_write`; it is the one implementation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from glob import escape as glob_escape
from pathlib import Path

from core.errors import InputError
from core.processes import pid_alive

_UMASK = os.umask(0)
os.umask(_UMASK)



def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so that readers never see a partial file (temp + fsync + rename).

    The temporary file, `.NAME.PID.XXXXXXXX.tmp` beside the target, names its writer's process:
    a writer killed before its rename leaves it behind, and the next write of the same file
    removes every such file whose writer is no longer alive (`remove_stale_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and not error.filename:
            error.filename = str(path)  # say which file could not be written (disk full: fsync has no name)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where supported
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of `atomic_write(path, ...)` calls whose process has died.

    A temporary file is `.NAME.PID.XXXXXXXX.tmp`; one whose PID is alive (a writer at work, in
    this or another process) is left alone, as is any name that does not parse. Returns what
    was removed.
    """
    removed = []
    for tmp in Path(path).parent.glob(f".{glob_escape(Path(path).name)}.*.tmp"):
        pid_text = tmp.name[len(Path(path).name) + 2:].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


STORAGE_ERRNOS = {errno.ENOSPC: "Free some space, or write somewhere else",
                  errno.EDQUOT: "Free some space in your quota, or write somewhere else",
                  errno.EROFS: "Choose a folder on a writable disk",
                  errno.EACCES: "Check the folder's permissions, or choose another folder",
                  errno.EPERM: "Check the folder's permissions, or choose another folder"}


def storage_input_error(error: OSError) -> InputError | None:
    """An OSError from writing files (disk full, read-only, no permission) as the InputError
    a user can act on; None for any other OSError (that one is a bug or a broken disk)."""
    hint = STORAGE_ERRNOS.get(error.errno)
    if hint is None:
        return None
    where = f" '{error.filename}'" if error.filename else ""
    return InputError(f"Cannot write{where}: {error.strerror or os.strerror(error.errno)}", hint)
