"""Files that are never half-written: the package's one atomic write.

Checkpoints, training histories, study results, generated notebooks, pages, caches and
downloads are all written the same way: into a fresh private temporary file beside the target
(created with ``O_EXCL | O_NOFOLLOW``, so a link planted there is never followed and two
writers never share a file), then renamed onto it with ``os.replace`` (which replaces a link at
the target instead of writing through it). A crash, Ctrl-C or an error inside ``write`` leaves
the previous file intact and no temporary file behind; temporaries of killed runs are removed
the next time the same file is written.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "umask"]


def umask() -> int:
    """The process's umask (reading it means setting it: it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[BinaryIO], None], *, suffix: str = "") -> None:
    """Call ``write(file)`` on a fresh private temporary file beside ``path``, then rename it
    onto ``path``.

    The temporary file is ``.NAME.tmp-PID-TOKEN`` plus ``suffix`` (e.g. ``".part"``), readable
    by its owner only while ``write`` runs; the finished file's mode is ``0666`` less the umask,
    as for any file its user writes. Missing folders are created.

    Raises:
        Whatever ``write`` raises (the temporary file is removed, ``path`` is untouched).
    """
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(folder, name)
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_BINARY", 0))
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write` of ``text`` as UTF-8 with ``\\n`` line ends (on every platform)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows: keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Delete ``.NAME.tmp-PID...`` files whose process is no longer running (killed runs)."""
    prefix = f".{name}.tmp-"
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = re.match(r"(\d+)(-[0-9a-f]+)?(\.\w+)?$", entry[len(prefix):])
        if not entry.startswith(prefix) or match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                os.remove(os.path.join(folder, entry))
            except OSError:
                pass
