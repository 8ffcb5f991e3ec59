"""The processes of ``atk serve``'s runs: starting them in sessions of their own, and stopping them.

A run is an ``atk run`` process in a new session (its own process group), so
that a signal reaches everything it started and nothing else; its output goes
to its log. Stopping is SIGINT first (the run records that it was
interrupted and can resume), SIGKILL after a grace period. After a server
restart a run is recognised by its pid *and* its command line, so that a
recycled pid is not taken for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .folder import open_private


def launch(command: list, *, cwd, env: dict, log_path: Path, note: str) -> subprocess.Popen:
    """Start ``command`` in a session of its own, appending its output to ``log_path``
    after a line saying ``note``; ``OSError`` if it cannot start."""
    with os.fdopen(open_private(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as log_file:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log_file.write(f"# {stamp} atk serve: {note}; in {cwd}\n".encode())
        log_file.flush()
        return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def stop_groups(pids, grace: float) -> None:
    """SIGINT the process groups ``pids``, then SIGKILL whatever is left after ``grace`` seconds."""
    pids = list(pids)
    for pid in pids:
        signal_group(pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(group_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        signal_group(pid, signal.SIGKILL)


def signal_group(pid: int, sig) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group of zombies only is gone for our purposes.
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def is_alive(pid: int, marker: str) -> bool:
    """Whether ``pid`` is still a running process whose command line names ``marker``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    if not Path("/proc").is_dir():
        return True
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
        return False
    return marker in cmdline.split("\x00")
