"""What the fake provider servers share: a real HTTP/1.1 server on a real socket (asyncio,
keep-alive) run on a thread, a log of the requests it got, and faults injected on
chosen requests.

Faults are queued (``push``) or matched by prompt text (``rule``): a status code
with headers, a hang, a malformed body, a cut-off answer, a dropped connection.
``FakeOpenAIServer`` and ``FakeAnthropicServer`` are the two APIs spoken over it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

BEHAVIOURS = ("ok", "status", "hang", "malformed", "length", "drop")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
           404: "Not Found", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout", 529: "Overloaded"}


@dataclass
class Behaviour:
    kind: str = "ok"
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: Any = None

    @classmethod
    def of(cls, spec) -> "Behaviour":
        if isinstance(spec, Behaviour):
            return spec
        if isinstance(spec, int):
            return cls("status", spec)
        if isinstance(spec, tuple):  # (status, headers)
            return cls("status", spec[0], dict(spec[1]))
        if spec not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {spec!r}")
        return cls(spec)


@dataclass
class Rule:
    match: str
    behaviour: Behaviour
    times: int | None


class FakeHTTPServer:
    """The server without an API: a subclass answers in ``_handle``. Start it with
    ``start()`` (or ``with``); ``stop()`` ends it and every connection still open."""

    thread_name = "fake-http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                 answer: Callable[[str, dict], Any] | None = None, record: bool = True,
                 cpu_ms: float = 0.0):
        self.host, self.port = host, port
        self.delay = delay
        self.cpu_ms = cpu_ms  # CPU each answer costs, as a real server's front end spends it
        self.answer = answer
        self.record = record
        self.requests: list[dict] = []
        self.request_count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: list[Behaviour] = []
        self._rules: list[Rule] = []
        self._answered: dict[str, int] = {}
        self.answer_limit: int | None = None  # after this many answers, every request hangs
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None
        self._hangs: list[asyncio.Future] = []

    # -- control -------------------------------------------------------------------------

    def push(self, *behaviours) -> None:
        """The next requests get these behaviours, in order; then normal answers again."""
        with self._lock:
            self._queue.extend(Behaviour.of(b) for b in behaviours)

    def rule(self, match: str, behaviour, times: int | None = None) -> None:
        """Requests whose prompt contains ``match`` get ``behaviour`` (``times`` times, or always)."""
        with self._lock:
            self._rules.append(Rule(match, Behaviour.of(behaviour), times))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rules.clear()

    def answered_twice(self) -> list[str]:
        """Request bodies that were answered successfully more than once."""
        with self._lock:
            return [key for key, count in self._answered.items() if count > 1]

    def answered(self) -> int:
        with self._lock:
            return sum(self._answered.values())

    def start(self):
        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._open())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name=self.thread_name)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close():
            for hang in self._hangs:
                hang.cancel()
            self._server.close()
            # Connections still open (a client that keeps one alive) end here, not with
            # "Task was destroyed but it is pending!" when the loop goes.
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _open(self):
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self, say: str) -> None:
        """Serve in this process's event loop until interrupted (``python -m``), after
        printing ``say`` with the address."""
        await self._open()
        print(say.format(url=self.url), flush=True)
        await asyncio.Event().wait()

    # -- HTTP ------------------------------------------------------------------------------

    async def _connection(self, reader, writer):
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", 0))
                body = await reader.readexactly(length) if length else b""
                keep_going = await self._handle(method, path, headers, body, writer)
                if not keep_going:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:  # the server stops: the connection ends quietly
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _handle(self, method, path, headers, body, writer) -> bool:
        """Answer one request; False closes the connection."""
        raise NotImplementedError

    async def _hang(self) -> bool:
        """Never answer (until the server stops); the connection closes."""
        hang = asyncio.get_running_loop().create_future()
        self._hangs.append(hang)
        try:
            await hang
        except asyncio.CancelledError:
            pass
        return False

    async def _serve_request(self, text: str, entry: dict, writer, answer) -> bool:
        """One model request, with the prompt ``text``: noted (``entry``) and counted in
        flight, slowed by ``cpu_ms`` and ``delay``, then the fault injected for it (a hang, a
        dropped connection, an error status, a malformed body) or ``answer(behaviour)``
        (``ok`` or ``length``), which sends the API's own reply."""
        behaviour = self._behaviour_for(text)
        with self._lock:
            self._note({**entry, "behaviour": behaviour.kind})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.cpu_ms:
                spend_cpu(self.cpu_ms / 1000)
            if self.delay:
                await asyncio.sleep(self.delay)
            if behaviour.kind == "hang":
                return await self._hang()
            if behaviour.kind == "drop":
                return False
            if behaviour.kind == "status":
                self._send_error(writer, behaviour.status, f"injected HTTP {behaviour.status}",
                                 behaviour.headers)
            elif behaviour.kind == "malformed":
                self._send_raw(writer, 200, self.malformed_body, {})
            else:
                answer(behaviour)
            return True
        finally:
            with self._lock:
                self.in_flight -= 1

    # A 200 whose JSON is cut off mid-object (the API's own first bytes).
    malformed_body = b'{"id": "x", "oops'

    def _send_error(self, writer, status, message, headers=None):
        """An error reply in the API's own shape."""
        self._send(writer, status, {"error": {"message": message, "type": "injected"}}, headers)

    def _note(self, entry: dict) -> None:
        """Count a request (under the lock) and keep it in ``requests`` when recording."""
        self.request_count += 1
        if self.record:
            self.requests.append({"time": time.monotonic(), **entry})

    def _behaviour_for(self, text) -> Behaviour:
        with self._lock:
            return self._behaviour_for_locked(text)

    def _behaviour_for_locked(self, text) -> Behaviour:
        if self.answer_limit is not None and sum(self._answered.values()) >= self.answer_limit:
            return Behaviour("hang")
        if self._queue:
            return self._queue.pop(0)
        for rule in self._rules:
            if rule.match in text and (rule.times is None or rule.times > 0):
                if rule.times is not None:
                    rule.times -= 1
                return rule.behaviour
        return Behaviour("ok")

    def _answer_value(self, text: str, payload: dict, schema):
        """What the model says to a prompt: the scripted ``answer``, else a value that fits
        the request's JSON ``schema``, else a sentence of its own for this prompt."""
        if self.answer is not None:
            return self.answer(text, payload)
        if schema is not None:
            from ..toolkit.schemas import value_for_schema

            return value_for_schema(schema)
        return f"answer {hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def _send(self, writer, status, payload, headers=None):
        import json

        self._send_raw(writer, status, json.dumps(payload).encode(), headers or {})

    @staticmethod
    def _send_raw(writer, status, data: bytes, headers: dict, content_type: str = "application/json"):
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"content-type: {content_type}",
                f"content-length: {len(data)}", "connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)


def spend_cpu(seconds: float) -> None:
    """Keep this thread's CPU busy for ``seconds`` of its own CPU time (blocking, as a real
    server's tokenizer and templating would block its event loop)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def serve_from_command_line(server_class, description: str, port: int, more=()) -> None:
    """``python -m`` for a fake server: its address, delay, request log and CPU cost per answer
    from the command line (``more``: extra ``(flag, keyword, type, default)`` options), served
    until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--no-record", action="store_true", help="keep no request log (benchmarks)")
    parser.add_argument("--cpu-ms", type=float, default=0.0,
                        help="CPU milliseconds each answer costs (a real server's front end)")
    for flag, keyword, kind, default in more:
        parser.add_argument(flag, dest=keyword, type=kind, default=default)
    args = parser.parse_args()
    server = server_class(args.host, args.port, delay=args.delay, record=not args.no_record,
                          cpu_ms=args.cpu_ms, **{keyword: getattr(args, keyword) for _, keyword, _, _ in more})
    try:
        asyncio.run(server.serve_forever("listening on {url}"))
    except KeyboardInterrupt:
        pass
