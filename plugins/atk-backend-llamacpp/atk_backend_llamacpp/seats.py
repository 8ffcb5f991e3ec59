"""Sharing the machine's CPUs with the other processes that run llama.cpp models.

llama.cpp's threads spin while they wait for each other. Two processes that
each take every CPU therefore do not share the machine, they fight over it:
on two cores, two runs of the embedded model at once took 5.7 times as long
as one (``bench/threads.py``), while with one thread each they took no
longer than one alone.

So, unless ``n_threads`` is set, a process takes the CPUs divided by the
number of processes running llama.cpp models through this backend at the
moment, and looks again before each request (at most once a second): a run
alone gets every CPU, two at once get half each, and when one ends (or has
asked its model nothing for a minute) the other takes the whole machine back. The thread count does not change the
answers (llama.cpp splits rows, not sums, between threads; the tests check
that the same requests give the same bytes).

A process says that it runs a model by holding a lock on a file of its own
(a *seat*) in a folder only its user can enter: ``$ATK_LLAMACPP_SEATS``, or
``atk-llamacpp-UID`` in the system's temporary folder. A lock ends with its
process, however it ends, so a crashed run's seat is not counted (and is
removed by the next process that finds it). If the folder is not safe to use
(another user's, a link), each process keeps every CPU, as before.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

SEATS_ENV = "ATK_LLAMACPP_SEATS"
LOOK_EVERY = 1.0  # seconds between two counts of the processes sharing the CPUs
IDLE_AFTER = 60.0  # seconds without a request after which a process's seat is not counted
SUFFIX = ".seat"

log = logging.getLogger("atk")


def seats_folder() -> Path:
    configured = os.environ.get(SEATS_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"atk-llamacpp-{os.getuid()}"


class Seat:
    """This process's seat: taken with the first model it loads, held until it exits."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.fd: int | None = None
        self._others = 0
        self._counted_at = float("-inf")
        self._lock = threading.Lock()
        self._take()

    def _take(self) -> None:
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(self.folder)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() \
                    or stat.S_IMODE(info.st_mode) & 0o077:
                log.debug("llamacpp: %s is not a private folder of this user; CPUs not shared",
                          self.folder)
                return
            # Made and locked under a name nobody counts, then renamed into place: another
            # process never sees an unlocked seat of a live process (it would remove it).
            hidden = self.folder / f".{os.getpid()}-{threading.get_ident()}.new"
            fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, self.folder / f"{os.getpid()}{SUFFIX}")
            self.fd = fd
        except OSError as exc:
            log.debug("llamacpp: no seat in %s (%s); CPUs not shared", self.folder, exc)

    def touch(self) -> None:
        """Say that this process is asking its model something now."""
        if self.fd is not None:
            try:
                os.utime(self.fd)
            except OSError:
                pass

    def others(self) -> int:
        """How many other processes hold a seat now (counted at most once a second)."""
        if self.fd is None:
            return 0
        with self._lock:
            now = time.monotonic()
            if now - self._counted_at >= LOOK_EVERY:
                self._others = self._count()
                self._counted_at = now
            return self._others

    def _count(self) -> int:
        mine = f"{os.getpid()}{SUFFIX}"
        alive = 0
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return 0
        for entry in entries:
            if not entry.name.endswith(SUFFIX) or entry.name == mine:
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # its process holds it: counted if it has asked lately
                try:
                    alive += time.time() - os.fstat(fd).st_mtime < IDLE_AFTER
                except OSError:
                    pass
                continue
            except OSError:
                continue
            finally:
                os.close(fd)
            try:  # nobody holds it: a process that ended without removing it
                os.unlink(entry.path)
            except OSError:
                pass
        return alive

    def close(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.folder / f"{os.getpid()}{SUFFIX}")
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


_SEAT: Seat | None = None
_SEAT_LOCK = threading.Lock()


def seat() -> Seat:
    """This process's seat, taken on first use (one per process, whatever the models)."""
    global _SEAT
    with _SEAT_LOCK:
        if _SEAT is None or _SEAT.folder != seats_folder():
            if _SEAT is not None:
                _SEAT.close()
            _SEAT = Seat(seats_folder())
        return _SEAT


def fair_threads(cpus: int) -> int:
    """This process's share of ``cpus`` for the request it is about to make: divided among
    the processes that hold a seat and have asked their model something lately."""
    mine = seat()
    mine.touch()
    return max(1, cpus // (1 + mine.others()))
