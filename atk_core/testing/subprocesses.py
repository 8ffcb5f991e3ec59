"""The real ``atk`` command, in a subprocess."""

from __future__ import annotations

import os


def run_cli(*args, env=None, cwd=None, timeout=300, input=None, python=None):
    """Run ``atk ARGS`` in a subprocess (``python -m atk_core``) and capture its output.

    ``python`` picks the interpreter (a fresh venv's, from ``make_venv``);
    the result is a ``subprocess.CompletedProcess`` with text ``stdout`` and
    ``stderr``.
    """
    import subprocess
    import sys

    return subprocess.run(
        [str(python or sys.executable), "-m", "atk_core", *map(str, args)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input,
    )


def stderr_lines(result) -> list:
    """The non-empty lines a finished subprocess wrote to stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def kill_midway(config, *, log, calls: int, args=(), env=None, cwd=None, python=None,
                timeout: float = 120) -> int:
    """Start ``atk run CONFIG``, wait until the scripted model's ``log`` (its ``log:``
    option) has ``calls`` lines, then kill the run with SIGKILL, as a crash or an
    out-of-memory killer would. Returns how many calls the log holds after the kill (the
    ones in flight were logged but never answered). ``TimeoutError`` if the run ends
    or takes ``timeout`` seconds without getting there.
    """
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    log = Path(log)
    process = subprocess.Popen([str(python or sys.executable), "-m", "atk_core", "run", str(config),
                                *map(str, args)], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout

    def logged() -> int:
        return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0

    try:
        while logged() < calls:
            if process.poll() is not None:
                raise TimeoutError(f"the run ended (status {process.returncode}) after {logged()}"
                                   f" calls, before {calls}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run made {logged()} calls in {timeout:g}s, not {calls}")
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return logged()
