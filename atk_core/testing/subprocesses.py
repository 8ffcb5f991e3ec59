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
    from pathlib import Path

    log = Path(log)

    def logged() -> int:
        return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0

    kill_when(config, lambda: logged() >= calls, args=args, env=env, cwd=cwd, python=python,
              timeout=timeout, progress=lambda: f"made {logged()} calls, not {calls}")
    return logged()


def kill_when(config, ready, *, args=(), env=None, cwd=None, python=None, timeout: float = 120,
              progress=lambda: "never got there") -> None:
    """Start ``atk run CONFIG`` and kill it with SIGKILL (it and its children, as a crash or
    an out-of-memory killer would) as soon as ``ready()`` is true: a batch in progress, so
    many answers stored... ``TimeoutError`` (saying ``progress()``) if the run ends first or
    takes ``timeout`` seconds."""
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    stderr = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the run
    process = subprocess.Popen([str(python or sys.executable), "-m", "atk_core", "run", str(config),
                                *map(str, args)], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=stderr, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                stderr.seek(0)
                error = stderr.read().decode("utf-8", "replace").strip()[-2000:]
                raise TimeoutError(f"the run ended (status {process.returncode}) first: {progress()}"
                                   + (f"\n{error}" if error else ""))
            if time.monotonic() > deadline:
                raise TimeoutError(f"in {timeout:g}s the run {progress()}")
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        stderr.close()
