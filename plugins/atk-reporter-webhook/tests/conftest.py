"""A real HTTP receiver on 127.0.0.1, an address where nothing answers, and the "atk" log."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """An HTTP server in a thread that records every POST: its path, headers and JSON body.

    ``status`` is the answer's status code; ``statuses`` lists the codes of the
    first answers (then ``status`` again); ``hold=True`` makes it read each
    request, then wait to answer until the test calls ``release()`` (or the
    receiver stops); ``headers`` are added to every answer.
    """

    def __init__(self, status=200, statuses=(), hold=False, headers=None):
        self.status = status
        self.statuses = list(statuses)
        self.hold = hold
        self.released = threading.Event()
        self.answered = 0
        self.answer_headers = dict(headers or {})
        self.posts: list[dict] = []
        self._changed = threading.Condition()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self) -> list[dict]:
        """Every event received, in arrival order, across all POSTs."""
        with self._changed:
            return [e for post in self.posts for e in post["body"]["events"]]

    def wait_for_posts(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} POSTs, got {len(self.posts)}")
                self._changed.wait(left)
            return list(self.posts)

    @property
    def holding(self) -> int:
        """How many requests it has read and not yet answered."""
        with self._changed:
            return len(self.posts) - self.answered

    def release(self):
        self.released.set()

    def _record(self, post) -> int:
        with self._changed:
            self.posts.append(post)
            self._changed.notify_all()
            return self.statuses.pop(0) if self.statuses else self.status

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a slow handler still sleeping must not hold up the test

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timed out) is expected; no traceback on stderr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        post = {
            "path": self.path,
            "headers": dict(self.headers.items()),
            "raw": raw,
            "body": json.loads(raw.decode("utf-8")),
            "time": time.monotonic(),
        }
        status = receiver._record(post)
        if receiver.hold:
            receiver.released.wait(120)
        with receiver._changed:
            receiver.answered += 1
        answer = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
        try:
            self.send_response(status)
            for name, value in receiver.answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)
        except OSError:
            pass  # the client stopped waiting

    def log_message(self, format, *args):
        pass


@pytest.fixture
def make_receiver():
    """Start receivers with given behaviours; all are stopped after the test."""
    started = []

    def make(**behaviour) -> Receiver:
        receiver = Receiver(**behaviour).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(make_receiver) -> Receiver:
    """A receiver that answers 200 at once."""
    return make_receiver()


@pytest.fixture
def dead_url():
    """A URL on 127.0.0.1 where nothing listens: a bound socket that never listens.

    Holding the port (rather than closing a probed one) means no other process
    can start listening there during the test; connecting is refused.
    """
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/hook"
    finally:
        holder.close()


@pytest.fixture
def atk_warnings(caplog, monkeypatch):
    """A function returning the warnings logged on the "atk" logger so far, as text."""
    logger = logging.getLogger("atk")
    # The CLI, when run in this process, stops "atk" propagating to the root logger.
    monkeypatch.setattr(logger, "propagate", True)
    caplog.set_level(logging.WARNING, logger="atk")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.name == "atk" and r.levelno >= logging.WARNING]

    return warnings
