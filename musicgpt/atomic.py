"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from musicgpt.errors import MusicGPTError


class WriteError(MusicGPTError, OSError):
    """An output that cannot be written. It is an OSError too, so code that tolerates a failed
    write (a cache) still catches it; its message names the target, never a temporary file."""


def check_writable(paths: Iterable[str | os.PathLike]) -> None:
    """Refuse, before anything is written, an output that is a folder, a device or other special
    file (replacing it would destroy it), or whose folder is a file."""
    for path in map(Path, paths):
        if path.exists() and not path.is_file():
            raise WriteError(f"cannot write {path}: it exists and is not a regular file "
                             "(a folder or a device); choose another path")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise WriteError(f"cannot write {path}: {parent} is a file, not a folder")
                break


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    Usage: `with atomic_path(out) as tmp: write_to(tmp)`. On an exception the temporary file is
    removed and `path` is left as it was. `path` must be a regular file or not exist yet; a
    system error (no space, no permission) becomes a WriteError naming `path`.
    """
    path = Path(path)
    check_writable([path])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode an ordinary open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except WriteError:
        tmp_path.unlink(missing_ok=True)
        raise
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


STALE_AFTER_S = 3600  # a temporary file this old was left by a killed process, not a live write


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files an earlier write of `path` left behind when its process was
    killed (`.NAME.*.tmp` beside it, older than STALE_AFTER_S); return them."""
    removed = []
    now = time.time()
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - old.stat().st_mtime > STALE_AFTER_S and old.is_file():
                old.unlink()
                removed.append(old)
        except OSError:  # gone already, or not ours to remove
            pass
    return removed


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically, and only once the whole of it is on disk: the bytes are
    written and fsynced, and their size checked, before the rename. (A library that writes the
    file itself may not report a full disk: symusic left a 0-byte MIDI in place of a good one.)"""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if tmp.stat().st_size != len(data):
            raise WriteError(f"cannot write {path}: only {tmp.stat().st_size} of {len(data)} bytes "
                             "reached the disk (is it full?)")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
