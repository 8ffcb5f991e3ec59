"""A small OpenAI-compatible HTTP server for tests and benchmarks, with fault injection.

It speaks enough of the API (``/v1/chat/completions``, ``/v1/completions``,
``/v1/models``) for the openai SDK, answers instantly by default, and records
every request. Faults are queued (``push``) or matched by prompt text
(``rule``): a status code with headers, a hang, a malformed body, a cut-off
answer, a dropped connection. It is a real server on a real socket (asyncio,
HTTP/1.1 keep-alive), run on a thread (``start()``) or as a process::

    python -m atk_core.testing.openai_server --port 8011
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

BEHAVIOURS = ("ok", "status", "hang", "malformed", "length", "drop")


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


class FakeOpenAIServer:
    """Start with ``start()``; ``url`` is the base_url to give a client."""

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

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

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

    def start(self) -> "FakeOpenAIServer":
        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._open())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="fake-openai")
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
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _open(self):
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

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
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _handle(self, method, path, headers, body, writer) -> bool:
        path = path.split("?", 1)[0]
        if method == "GET" and path.endswith("/stats"):
            with self._lock:
                self._send(writer, 200, {"requests": self.request_count,
                                         "answered": sum(self._answered.values())})
            return True
        if method == "GET" and path.endswith("/models"):
            self._send(writer, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            return True
        if method != "POST" or not path.endswith(("/chat/completions", "/completions")):
            self._send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            self._send(writer, 400, {"error": {"message": "request body is not JSON"}})
            return True
        chat = path.endswith("/chat/completions")
        text = _prompt_text(payload, chat)
        behaviour = self._behaviour_for(text)
        with self._lock:
            self.request_count += 1
            if self.record:
                self.requests.append({"path": path, "payload": payload,
                                      "authorization": headers.get("authorization"),
                                      "time": time.monotonic(), "behaviour": behaviour.kind})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.cpu_ms:
                _spend_cpu(self.cpu_ms / 1000)
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._respond(behaviour, payload, chat, text, body, writer)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _respond(self, behaviour, payload, chat, text, body, writer) -> bool:
        kind = behaviour.kind
        if kind == "hang":
            hang = asyncio.get_running_loop().create_future()
            self._hangs.append(hang)
            try:
                await hang
            except asyncio.CancelledError:
                pass
            return False
        if kind == "drop":
            return False
        if kind == "status":
            message = {"error": {"message": f"injected HTTP {behaviour.status}", "type": "injected"}}
            self._send(writer, behaviour.status, message, behaviour.headers)
            return True
        if kind == "malformed":
            self._send_raw(writer, 200, b'{"id": "x", "choices": [ {"oops', {})
            return True
        content = self._content(payload, chat, text)
        finish = "stop"
        if kind == "length":
            content, finish = content[: max(1, len(content) // 2)], "length"
        with self._lock:
            key = hashlib.sha256(body).hexdigest() if self.record else ""
            self._answered[key] = self._answered.get(key, 0) + 1
        self._send(writer, 200, _completion(payload, chat, content, finish, text))
        return True

    def _content(self, payload, chat, text) -> str:
        schema = _schema_of(payload)
        if self.answer is not None:
            value = self.answer(text, payload)
        elif schema is not None:
            from ..schemas import value_for_schema

            value = value_for_schema(schema)
        else:
            value = f"answer {hashlib.sha256(text.encode()).hexdigest()[:12]}"
        return value if isinstance(value, str) else json.dumps(value)

    def _behaviour_for(self, text) -> Behaviour:
        with self._lock:
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

    def _send(self, writer, status, payload, headers=None):
        self._send_raw(writer, status, json.dumps(payload).encode(), headers or {})

    @staticmethod
    def _send_raw(writer, status, data: bytes, headers: dict):
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                  429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Status")
        head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
                f"content-length: {len(data)}", "connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)


def _spend_cpu(seconds: float) -> None:
    """Keep this thread's CPU busy for ``seconds`` of its own CPU time (blocking, as a real
    server's tokenizer and templating would block its event loop)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _prompt_text(payload, chat) -> str:
    if chat:
        return "\n".join(str(m.get("content", "")) for m in payload.get("messages", []))
    prompt = payload.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def _schema_of(payload):
    response_format = payload.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema")
    if response_format.get("type") == "json_object":
        return response_format.get("schema")
    return None


def _completion(payload, chat, content, finish, text) -> dict:
    usage = {"prompt_tokens": len(text.split()), "completion_tokens": len(content.split()),
             "total_tokens": len(text.split()) + len(content.split())}
    if chat:
        choice = {"index": 0, "finish_reason": finish,
                  "message": {"role": "assistant", "content": content}}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "finish_reason": finish, "text": content, "logprobs": None}
        kind = "text_completion"
    return {"id": "fake-1", "object": kind, "created": 0, "model": payload.get("model", "fake"),
            "choices": [choice], "usage": usage}


def main():
    import argparse

    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--no-record", action="store_true", help="keep no request log (benchmarks)")
    parser.add_argument("--cpu-ms", type=float, default=0.0,
                        help="CPU milliseconds each answer costs (a real server's front end)")
    args = parser.parse_args()
    server = FakeOpenAIServer(args.host, args.port, delay=args.delay, record=not args.no_record,
                              cpu_ms=args.cpu_ms)

    async def forever():
        await server._open()
        print(f"listening on {server.url}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(forever())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
