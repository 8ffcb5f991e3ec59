"""The runs folder of ``atk serve``: the server's own, private, and opened without following links.

The runs folder holds what the server trusts: the task store it starts runs
from, each run's config, its settings and its log. ``--runs-dir`` may point
into a place other users can write (a shared scratch folder), and whoever
made the folder first could have left a database of theirs, or a symlink to
one of the server user's files, for the server to use. So the server takes a
runs folder only when it and everything in it belong to the server's user
(``claim``), makes it private before it looks inside (nobody else can add
anything afterwards), and opens the files it writes by name without
following a link and only when they are its own (``open_private``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ConfigError

# Files the server and its runs open by name inside the runs folder or a run's folder.
OPENED_BY_NAME = frozenset({"serve.lock", "tasks.sqlite", "tasks.sqlite-wal", "tasks.sqlite-shm",
                            "tasks.sqlite-journal", "config.yaml", "settings.txt", "log.txt"})


def claim(folder) -> tuple[int, int]:
    """Make the runs folder, or take the one there, for this server; its (device, inode).

    ``ConfigError`` naming the reason, before anything is changed, when the path to it goes
    through a link another user made, when a folder above it lets other users swap it for
    one of theirs, when it (or anything in it) belongs to another user, or when a file the
    server opens by name is a link: the server refuses to start rather than trust what
    someone else put there, or could put there while it runs."""
    uid = os.geteuid()
    given = Path(os.path.abspath(os.path.expanduser(str(folder))))
    for place in [*reversed(given.parents), given]:
        try:
            entry = os.lstat(place)
        except FileNotFoundError:
            break
        if stat.S_ISLNK(entry.st_mode) and entry.st_uid not in (0, uid):
            raise ConfigError(f"cannot use the runs folder {str(given)!r}: {place} is a link that"
                              f" another user (uid {entry.st_uid}) made; give the folder's real path")
    folder = given.resolve()
    parent = shared_ancestor(folder)
    if parent is not None:
        raise ConfigError(f"cannot use the runs folder {str(folder)!r}: other users can rename"
                          f" things in {parent} (it is theirs, or writable by them without the"
                          " sticky bit that /tmp has), so they could swap the runs folder for one of"
                          " theirs while the server runs; choose a --runs-dir in a folder only you"
                          " can change")
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot use the runs folder {str(folder)!r}: it is a link or not a"
                          f" folder ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if info.st_uid != uid:
            raise ConfigError(_not_ours(folder, "the runs folder", info.st_uid))
        _check_contents(folder, uid)
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o700)  # from here on, nobody else can add anything to it...
            _check_contents(folder, uid)  # ...and nothing was added while we looked
    finally:
        os.close(fd)
    return info.st_dev, info.st_ino


def _check_contents(folder: Path, uid: int) -> None:
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            try:
                entry = os.lstat(path)
            except FileNotFoundError:
                continue
            shown = path.relative_to(folder).as_posix()
            if entry.st_uid != uid:
                raise ConfigError(_not_ours(folder, shown, entry.st_uid))
            if name in OPENED_BY_NAME and (not stat.S_ISREG(entry.st_mode) or entry.st_nlink != 1):
                what = "a link" if stat.S_ISLNK(entry.st_mode) or entry.st_nlink != 1 else "not a file"
                raise ConfigError(f"cannot use the runs folder {str(folder)!r}: {shown} is {what},"
                                  " which the server would open as its own; remove it or choose"
                                  " another --runs-dir")
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def _not_ours(folder: Path, what: str, owner: int) -> str:
    return (f"cannot use the runs folder {str(folder)!r}: {what} belongs to another user (uid"
            f" {owner}), who could have put in it what the server would trust; choose a folder of"
            " your own with --runs-dir")


def open_private(path, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """``os.open`` for a file of the runs folder: never through a link, and only a regular
    file of this user's with no other name (``OSError`` otherwise). Returns the descriptor."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            raise OSError(13, f"{path} is not a private file of this user's")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private(path) -> str:
    """The text of a file of the runs folder, opened as ``open_private`` does."""
    with os.fdopen(open_private(path), "r", encoding="utf-8") as handle:
        return handle.read()


def shared_ancestor(folder) -> Path | None:
    """The nearest folder above ``folder`` that other users may rename things in (writable by
    them and not sticky, unlike /tmp), if there is one: such a user could swap the whole
    runs folder for one of theirs while the server runs."""
    for parent in Path(folder).parents:
        try:
            info = os.stat(parent)
        except OSError:
            continue
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            return parent
        if info.st_uid not in (0, os.geteuid()):
            return parent
    return None
