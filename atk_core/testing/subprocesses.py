"""The real ``atk`` command, in a subprocess."""

from __future__ import annotations


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
