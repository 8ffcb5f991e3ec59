"""Real distributions for tests: installed-looking plugins on PYTHONPATH, wheels, fresh venvs."""

from __future__ import annotations

from pathlib import Path


class PluginSite:
    """A folder to put on PYTHONPATH holding installed-looking distributions.

    Each distribution is a ``<name>-<version>.dist-info`` folder with METADATA
    and ``entry_points.txt`` beside its modules: exactly what importlib.metadata
    reads from site-packages.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def add(self, dist: str, files: dict, entry_points: dict, version: str = "1.0") -> None:
        import textwrap

        for relative, text in files.items():
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text), encoding="utf-8")
        info = self.path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[atk]\n{lines}", encoding="utf-8")

    def env(self, **extra) -> dict:
        import os

        env = dict(os.environ)
        env.pop("ATK_LOAD_PLUGINS", None)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.path), env.get("PYTHONPATH", "")) if p
        )
        env.update(extra)
        return env


_NOT_SOURCE = ("build", "dist", "*.egg-info", ".venv", ".git", "__pycache__", ".pytest_cache",
               "node_modules")


def build_wheel(project, dest, *, isolated: bool = True) -> Path:
    """Build a project's wheel from a clean copy of its sources; the wheel's path.

    The build runs as ``pip wheel`` would for a user: isolated, in a fresh
    build environment holding what the project's ``[build-system] requires``
    names (pip fetches it from the package index, or its cache).
    ``isolated=False`` builds with this environment's setuptools instead, for
    machines with no index at all. The copy keeps a stale ``build/`` folder
    (from an earlier build) from slipping files into the wheel that the
    source no longer has. A failed build raises ``RuntimeError`` whose first
    line is pip's own error, with the rest of pip's output after it.
    """
    import shutil
    import subprocess
    import sys
    import tempfile

    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.whl"))
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / Path(project).resolve().name
        shutil.copytree(project, source, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
             "-q", "-w", str(dest), *([] if isolated else ["--no-build-isolation"]), str(source)],
            capture_output=True, text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(f"building a wheel of {project} failed: {_pip_error(result.stderr)}\n"
                           f"{result.stderr[-3000:]}")
    (wheel,) = set(dest.glob("*.whl")) - before
    return wheel


def make_venv(path, packages, env=None) -> Path:
    """A fresh virtual environment at ``path`` with ``packages`` pip-installed; its python.

    ``packages`` are whatever ``pip install`` takes: wheel files (from
    ``build_wheel``), requirement strings, folders. Give atk-core as a wheel
    too (``build_wheel`` of atk's own checkout, or ``atk-core`` from the
    index) beside your plugin's wheel, so that nothing in the venv comes from
    a source folder. Returns the venv's ``bin/python``: pass it to
    ``run_cli(..., python=...)`` to run its ``atk``.
    """
    import subprocess
    import sys

    path = Path(path)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *map(str, packages)],
        capture_output=True, text=True, env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip install into {path} failed: {_pip_error(result.stderr)}\n"
                           f"{result.stderr[-3000:]}")
    return python


def _pip_error(output: str) -> str:
    """The line of pip's output that says what went wrong (its last ``error:`` line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:300]
