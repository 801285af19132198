"""Files safely: only regular files are read, and every output goes to a temporary name and is
moved into place when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from voiceguide.errors import OutputError

TEMPORARY_SUFFIX = ".tmp"


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a file ('does not exist (looked in ...)', 'is a folder', ...), or None.

    Only regular files are read: a device reports size 0 and never ends (/dev/zero), and a
    named pipe may never deliver anything, so reading either would run out of memory or hang.
    """
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder"
    return "is not a regular file" if path.exists() else f"does not exist (looked in {path.parent})"


def remove_stale_temporaries(folder: Path) -> int:
    """Remove temporary files left under `folder` by builds that were killed; returns how many.

    A temporary name carries the writing process's id, so one still being written by a live
    build (two builds may share a folder) is left alone.
    """
    if os.name != "posix" or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(f".*{TEMPORARY_SUFFIX}"):
        parts = path.name.split(".")
        pid = next((int(part) for part in reversed(parts[:-2]) if part.isdigit()), None)
        if pid is not None and not _alive(pid):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    """The process's umask, read without changing it.

    Setting it and back (the only portable way) leaves it 0 for a moment, and a thread creating
    a folder in that moment makes it open to everyone; builds write from several threads. Where
    /proc does not say (not Linux), the umask the process started with is used.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _STARTING_UMASK


def _read_umask_once() -> int:
    mask = os.umask(0)  # at import, before any thread of ours is writing
    os.umask(mask)
    return mask


_STARTING_UMASK = _read_umask_once()


@contextlib.contextmanager
def atomic_path(target: Path, keep_existing: bool = False) -> Iterator[Path]:
    """A temporary path beside `target`, renamed onto it if the block succeeds, removed otherwise.

    So a failed or interrupted write leaves the previous file intact. With `keep_existing`, a
    target that exists by then (written by another process meanwhile) is kept as it is.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{target.name}.{os.getpid()}."  # the pid tells a live build's temporary from a dead one's
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=TEMPORARY_SUFFIX)
        os.close(handle)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror}") from None
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        if keep_existing:
            with contextlib.suppress(FileExistsError):
                os.link(temporary_path, target)
        else:
            os.replace(temporary_path, target)
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror}") from None
    finally:
        temporary_path.unlink(missing_ok=True)


def remove_files(entries: list[Path]) -> int:
    """Remove `entries`; returns the bytes freed."""
    freed = sum(file_sizes(entries))
    for entry in entries:
        entry.unlink(missing_ok=True)
    return freed


def file_sizes(paths: Iterable[Path]) -> list[int]:
    """The sizes of the regular files among `paths`; one removed meanwhile (by another build) counts nothing."""
    sizes = []
    for path in paths:
        try:
            if path.is_file():
                sizes.append(path.stat().st_size)
        except OSError:
            pass
    return sizes
