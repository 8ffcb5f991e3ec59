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

from .folder import claim, open_private
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
        return _unguessable(Token(text, "file"))
    if token:
        return _unguessable(Token(token, "command line"))
    if environ.get("ATK_SERVE_TOKEN"):
        return _unguessable(Token(environ["ATK_SERVE_TOKEN"], "environment"))
    return Token(secrets.token_urlsafe(24), "generated")


# A token anyone on the machine may try against the port: short ones can be guessed.
MIN_TOKEN_LENGTH = 16


def _unguessable(token: Token) -> Token:
    example = "for example: python -c 'import secrets; print(secrets.token_urlsafe())'"
    if not TOKEN_CHARACTERS.fullmatch(token.value):
        raise ConfigError(f"the token must be letters, digits and . _ ~ / = - only (no spaces); {example}")
    if len(token.value) < MIN_TOKEN_LENGTH or len(set(token.value)) < MIN_TOKEN_LENGTH // 2:
        raise ConfigError(f"the token from the {token.source} can be guessed ({len(token.value)}"
                          f" characters, {len(set(token.value))} different); one that other users"
                          f" cannot guess has at least {MIN_TOKEN_LENGTH}, of at least"
                          f" {MIN_TOKEN_LENGTH // 2} different characters; {example}")
    return token


def serve(host: str = "127.0.0.1", port: int = 8400, runs_dir="atk-runs", token: Token | None = None,
          allow_env=(), allow_input=None, max_running: int = 1, allow_scripted: bool = False,
          max_queued: int = 100):
    """Run the web interface until interrupted (Ctrl-C stops it and interrupts its runs).
    ``token`` None serves without one (loopback only); ``allow_env`` and ``allow_input`` are
    what a config sent to the server may use and read; ``max_running`` how many runs go at
    once, ``max_queued`` how many may wait."""
    if isinstance(token, str):
        token = _unguessable(Token(token, "command line"))
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
        claimed = claim(runs_dir)  # the server's own, private, nothing of another user's in it
        lock = _lock_runs_dir(folder)
    except BaseException as exc:
        sock.close()
        if created and _owned(folder):  # ours alone: another user may have made it meanwhile
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot use the runs folder {str(folder)!r}: {exc.strerror}") from None
        raise
    from .app import create_app

    app = create_app(folder, token=token.value if token else None, loopback=is_loopback(host),
                     allow_env=list(allow_env), allow_input=allow_input, max_running=max_running,
                     allow_scripted=allow_scripted, max_queued=max_queued, claimed=claimed)
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


# A connection must send a request's headers this soon after it opens (or after its previous
# response), and its body this soon after its headers; a response it does not read must
# leave this soon.
HEADER_SECONDS = 10.0
BODY_SECONDS = 45.0  # the guard answers 408 at 30 s; this is the backstop
WRITE_SECONDS = 30.0


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
    """uvicorn's h11 protocol, bounded in time and number, so that a local user cannot hold
    the server's connections (each a file handle) for ever: a connection past
    ``max_connections()`` is closed at once; one whose request's headers are not all in
    ``HEADER_SECONDS`` after it opened (or after its last response), or whose body is not
    all in ``BODY_SECONDS`` after its headers, is closed; a body left unread when its answer
    is sent (a refused request) is not waited for; and a connection that does not read
    its answers for ``WRITE_SECONDS`` is closed."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limit = max_connections()

    class BoundedH11Protocol(H11Protocol):
        _deadline = None
        _write_deadline = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > limit:
                transport.abort()
                return
            self._arm(HEADER_SECONDS)

        def _arm(self, seconds):
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self):
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self):
            self._deadline = None
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                self.transport.abort()  # a request not begun, begun and never finished, or trickling

        def data_received(self, data):
            before = self.conn.their_state
            super().data_received(data)
            after = self.conn.their_state
            if after is not before:
                if after is h11.SEND_BODY:
                    self._arm(BODY_SECONDS)
                elif after is h11.DONE:
                    self._disarm()

        def on_response_complete(self):
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.SEND_BODY:  # answered (refused) before its body came
                self.transport.close()
                return
            self._arm(HEADER_SECONDS)

        def pause_writing(self):
            super().pause_writing()
            if self._write_deadline is None:
                self._write_deadline = self.loop.call_later(WRITE_SECONDS, self.transport.abort)

        def resume_writing(self):
            super().resume_writing()
            if self._write_deadline is not None:
                self._write_deadline.cancel()
                self._write_deadline = None

        def connection_lost(self, exc):
            self._disarm()
            if self._write_deadline is not None:
                self._write_deadline.cancel()
                self._write_deadline = None
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
