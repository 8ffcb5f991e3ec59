"""Test patterns every pipeline package repeats: a config file, a config mistake, a killed
run resumed, the ``atk`` of a fresh venv. Each raises ``AssertionError`` saying what went
wrong, so a pipeline's test is one call."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .subprocesses import kill_midway, run_cli, stderr_lines


def write_config(path, pipeline: str, **fields) -> Path:
    """Write a config file for ``atk run``: ``pipeline``, ``progress: [jsonl]`` and
    ``fields`` (each as JSON, which YAML reads as is); return its path."""
    path = Path(path)
    lines = [f"pipeline: {pipeline}", "progress: [jsonl]"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in fields.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config_error(config, *, env=None, cwd=None, python=None) -> str:
    """Run ``atk run CONFIG``, which must refuse the config as a user needs it refused:
    exit status 2 and exactly one line on stderr, ``atk: error: ...``. Returns that line."""
    result = run_cli("run", config, env=env, cwd=cwd, python=python)
    assert result.returncode == 2, f"exit status {result.returncode}, not 2:\n{result.stderr}"
    lines = stderr_lines(result)
    assert len(lines) == 1, f"{len(lines)} lines on stderr, not one:\n{result.stderr}"
    assert lines[0].startswith("atk: error: "), lines[0]
    return lines[0]


def resume_after_kill(config_for, *, outputs, in_flight: int, env=None, cwd=None) -> int:
    """The resume promise, end to end: a clean run, then a run killed with SIGKILL halfway
    through its model calls and run again. Nothing of ``outputs`` may exist after the kill. ``config_for(name, log)`` writes a config whose
    ``output_dir`` is ``cwd/name`` and whose scripted models log every call to ``cwd/log``
    (their ``log:`` option). The resumed run's ``outputs`` (file names) must be the clean
    run's bytes, and it may repeat at most ``in_flight`` calls (the models' concurrency).
    Returns how many calls it repeated."""
    cwd = Path(cwd or ".")

    def calls(log) -> int:
        path = cwd / log
        return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0

    clean = run_cli("run", config_for("clean", "clean.jsonl"), env=env, cwd=cwd)
    assert clean.returncode == 0, clean.stderr
    total = calls("clean.jsonl")
    assert total >= 2, f"the clean run made {total} model calls: too few to kill it halfway"
    logged = kill_midway(config_for("resumed", "first.jsonl"), log=cwd / "first.jsonl",
                         calls=total // 2, env=env, cwd=cwd)
    written = [name for name in outputs if (cwd / "resumed" / name).exists()]
    assert not written, f"a killed run left {', '.join(written)} behind"
    again = run_cli("run", config_for("resumed", "second.jsonl"), env=env, cwd=cwd)
    assert again.returncode == 0, again.stderr
    repeated = logged + calls("second.jsonl") - total
    assert 0 <= repeated <= in_flight, f"{repeated} calls repeated, more than the {in_flight} in flight"
    for name in outputs:
        assert (cwd / "resumed" / name).read_bytes() == (cwd / "clean" / name).read_bytes(), \
            f"{name} differs after the resumed run"
    return repeated


def venv_cli(python, *, cwd, helpers=None):
    """``atk(*args)`` that runs the ``atk`` of a fresh venv (``python``, from ``make_venv``)
    with none of this process's plugin paths, and ``helpers`` (a folder of test modules,
    say a scripted model's answers) on PYTHONPATH. It fails with the command's stderr when
    the command fails; else returns the ``CompletedProcess``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATK_LOAD_PLUGINS")}
    if helpers is not None:
        env["PYTHONPATH"] = str(helpers)

    def atk(*args, timeout: float = 300):
        result = run_cli(*args, python=python, env=env, cwd=cwd, timeout=timeout)
        assert result.returncode == 0, f"atk {' '.join(map(str, args))}:\n{result.stderr}"
        return result

    return atk
