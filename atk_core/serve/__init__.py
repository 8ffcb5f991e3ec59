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
import secrets
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

from .folder import claim, open_private, warn_if_shared
from .guard import TOKEN_CHARACTERS, is_loopback

EXTRA_HINT = "pip install 'atk-core[serve]'"


@dataclass(frozen=True)
class Token:
    """The token every request must carry, and where it came from: ``file``, ``environment``,
    ``command line`` or ``generated``."""

    value: str
    source: str


def resolve_token(*, token=None, token_file=None, environ=None, no_token=False) -> Token | None:
    """The server's token: ``--token-file``, else ``--token`` (which other users can read in
    the process list), else ``ATK_SERVE_TOKEN``, else a new one; None with ``--no-token``."""
    environ = os.environ if environ is None else environ
    given = [name for name, value in (("--token-file", token_file), ("--token", token)) if value]
    if no_token and given:
        raise ConfigError(f"--no-token and {given[0]} say opposite things; give one")
    if len(given) > 1:
        raise ConfigError("--token-file and --token both give a token; give one")
    if no_token:
        return None
    if token_file:
        try:
            text = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --token-file {token_file!r}: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"--token-file {token_file!r} is empty")
        mode = Path(token_file).expanduser().stat().st_mode
        if mode & 0o077:
            raise ConfigError(f"--token-file {token_file!r} can be read by other users (mode"
                              f" {oct(mode & 0o777)}); make it private: chmod 600 {token_file}")
        return _checked(Token(text, "file"))
    if token:
        return _checked(Token(token, "command line"))
    if environ.get("ATK_SERVE_TOKEN"):
        return _checked(Token(environ["ATK_SERVE_TOKEN"], "environment"))
    return Token(secrets.token_urlsafe(24), "generated")


# A token anyone on the machine may try against the port: short ones can be guessed.
MIN_TOKEN_LENGTH = 16


def _checked(token: Token) -> Token:
    example = "for example: python -c 'import secrets; print(secrets.token_urlsafe())'"
    if not TOKEN_CHARACTERS.fullmatch(token.value):
        raise ConfigError(f"the token must be letters, digits and . _ ~ / = - only (no spaces); {example}")
    if len(token.value) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"the token from the {token.source} has {len(token.value)} characters; one"
                          f" that other users cannot guess has at least {MIN_TOKEN_LENGTH}; {example}")
    return token


def serve(host: str = "127.0.0.1", port: int = 8400, runs_dir="atk-runs", token: Token | None = None,
          allow_env=(), allow_input=None, max_running: int = 1, allow_scripted: bool = False,
          max_queued: int = 100):
    """Run the web interface until interrupted (Ctrl-C stops it and interrupts its runs).
    ``token`` None serves without one (loopback only); ``allow_env`` and ``allow_input`` are
    what a config sent to the server may use and read; ``max_running`` how many runs go at
    once, ``max_queued`` how many may wait."""
    if isinstance(token, str):
        token = _checked(Token(token, "command line"))
    if not is_loopback(host) and token is None:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who can reach it could start runs;"
            " drop --no-token, or bind to 127.0.0.1"
        )
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"atk serve needs FastAPI and uvicorn ({exc.name} is not installed):"
                          f" {EXTRA_HINT}") from None
    allow_input = [Path(folder).expanduser().resolve() for folder in (allow_input or [os.getcwd()])]
    missing = [str(folder) for folder in allow_input if not folder.is_dir()]
    if missing:
        raise ConfigError(f"--allow-input {missing[0]!r} is not a folder")

    os.umask(0o077)  # runs, configs, logs, outputs and the task store: readable by their owner only
    folder = Path(runs_dir).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--runs-dir {str(folder)!r} is a file, not a folder")
    sock = _bind(host, port)  # first: a port in use or a bad host leaves no runs folder behind
    created = not folder.exists()
    try:
        claim(folder)  # the server's own, private, nothing of another user's in it
        lock = _lock_runs_dir(folder)
    except BaseException as exc:
        sock.close()
        if created and _owned(folder):  # ours alone: another user may have made it meanwhile
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot use the runs folder {str(folder)!r}: {exc.strerror}") from None
        raise
    warn_if_shared(folder)
    from .app import create_app

    app = create_app(folder, token=token.value if token else None, loopback=is_loopback(host),
                     allow_env=list(allow_env), allow_input=allow_input, max_running=max_running,
                     allow_scripted=allow_scripted, max_queued=max_queued)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    page = f"http://{shown}:{bound}/"
    if token is None:
        print(f"atk: serving {page} (runs in {folder}); Ctrl-C stops it", flush=True)
        print("atk: warning: --no-token: any program or user on this machine that can reach the"
              " port can start runs as you, reading your files and sending your keys where a config"
              " says", file=sys.stderr, flush=True)
    elif token.source == "generated":
        print(f"atk: serving {page}?token={token.value} (runs in {folder}); Ctrl-C stops it", flush=True)
        print("atk: open that URL: the page keeps the token for its tab (a new tab needs the URL"
              " again); the API wants 'Authorization: Bearer TOKEN'", flush=True)
    else:
        print(f"atk: serving {page} (runs in {folder}); Ctrl-C stops it", flush=True)
        print(f"atk: every request needs the token (from the {token.source}); open the page as"
              f" {page}?token=YOUR_TOKEN", flush=True)
    if token is not None and token.source == "command line":
        print("atk: warning: a token given with --token can be read by other users of this machine"
              " in the process list; use --token-file or ATK_SERVE_TOKEN", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            http=_bounded_protocol(), timeout_keep_alive=5,
                            h11_max_incomplete_event_size=32_000)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        lock.close()


# A connection must finish its request's headers this soon after it opens (or after its
# previous response); a body must arrive as soon (the guard sees to that).
HEADER_SECONDS = 10.0


def max_connections() -> int:
    """Connections served at once: each costs a file handle, so at most half of what the
    process may open (the rest is for runs' logs, the task store, downloads)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            soft = 4096
    except (ImportError, OSError, ValueError):
        soft = 1024
    return max(32, min(1000, soft // 2))


def _bounded_protocol():
    """uvicorn's h11 protocol, bounded: a connection past ``max_connections()`` is closed at
    once, and one that has not sent a whole request's headers ``HEADER_SECONDS`` after it
    opened (or after its last response) is closed, so that connections which never finish
    cannot pile up and use every file handle the server has."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limit = max_connections()

    class BoundedH11Protocol(H11Protocol):
        _deadline = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > limit:
                transport.abort()
                return
            self._arm()

        def _arm(self):
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(HEADER_SECONDS, self._headers_late)

        def _headers_late(self):
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.abort()  # a request not begun, or begun and never finished

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc):
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return BoundedH11Protocol


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


def _owned(folder: Path) -> bool:
    try:
        return os.lstat(folder).st_uid == os.geteuid()
    except OSError:
        return False


def _lock_runs_dir(folder: Path):
    """One server per runs folder: a second one would watch the same runs twice."""
    handle = os.fdopen(open_private(folder / "serve.lock", os.O_RDWR | os.O_CREAT), "r+")
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
