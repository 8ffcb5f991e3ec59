"""``atk serve``: the local web interface.

Start runs from installed pipelines' config templates, watch their progress
bars, read their logs, download their outputs. Runs are ``atk run``
processes; their state is kept in a SQLite task store in the runs folder, so
a restarted server finds them again (see ``runs.py``).

FastAPI and uvicorn are an optional extra (``pip install 'atk-core[serve]'``)
and are imported only when the server starts, so ``import atk_core`` and
``atk --help`` do not pay for them.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

from ..errors import ConfigError

from .guard import TOKEN_CHARACTERS, is_loopback

EXTRA_HINT = "pip install 'atk-core[serve]'"


def serve(host: str = "127.0.0.1", port: int = 8400, runs_dir="atk-runs", token: str | None = None):
    """Run the web interface until interrupted (Ctrl-C stops it and interrupts its runs)."""
    token = token or None
    if token is not None and not TOKEN_CHARACTERS.fullmatch(token):
        raise ConfigError("the token must be letters, digits and . _ ~ / = - only (no spaces);"
                          " for example: python -c 'import secrets; print(secrets.token_urlsafe())'")
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who can reach it could start runs;"
            " pass --token (or set ATK_SERVE_TOKEN), or bind to 127.0.0.1"
        )
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"atk serve needs FastAPI and uvicorn ({exc.name} is not installed):"
                          f" {EXTRA_HINT}") from None

    folder = Path(runs_dir).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--runs-dir {str(folder)!r} is a file, not a folder")
    sock = _bind(host, port)  # first: a port in use or a bad host leaves no runs folder behind
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock_runs_dir(folder)
    except BaseException as exc:
        sock.close()
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot use the runs folder {str(folder)!r}: {exc.strerror}") from None
        raise
    from .app import create_app

    app = create_app(folder, token=token, loopback=is_loopback(host))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"atk: serving http://{shown}:{bound}/ (runs in {folder}); Ctrl-C stops it", flush=True)
    if token:
        print("atk: every request needs the token; open the page as"
              f" http://{shown}:{bound}/?token=YOUR_TOKEN", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        lock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(False)
    return sock


def _lock_runs_dir(folder: Path):
    """One server per runs folder: a second one would watch the same runs twice."""
    handle = open(folder / "serve.lock", "a+")
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise ConfigError(f"another atk serve{f' (pid {holder})' if holder else ''} is using"
                              f" the runs folder {folder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
    return handle
