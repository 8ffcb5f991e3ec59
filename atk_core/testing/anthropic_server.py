"""A small Anthropic Messages API server for tests and benchmarks, with fault injection.

It speaks the API as Anthropic documents it, on 127.0.0.1 (``url`` is the
``base_url`` to give a client; paths start with ``/v1``):

- ``POST /v1/messages``: a key in ``x-api-key`` (or ``Authorization: Bearer``)
  and an ``anthropic-version`` header are required; the body is checked
  (``model``, ``max_tokens``, ``messages`` of ``user`` and ``assistant``
  turns, ``system``, ``stop_sequences``, ``tools`` and ``tool_choice``,
  ``output_config``, at most four ``cache_control`` breakpoints; ``temperature``,
  ``top_p`` and ``top_k`` only with version ``2023-06-01``: version
  ``2026-10-21`` refuses them). The answer is a ``message`` with a ``text``
  block, or a ``tool_use`` block when a tool is forced, and ``usage`` as the
  API counts it: ``input_tokens`` (after the last cache breakpoint),
  ``cache_creation_input_tokens``, ``cache_read_input_tokens``,
  ``output_tokens``. The prompt cache is real: a prefix up to a breakpoint, at
  least ``cache_min_tokens`` long, is written the first time and read after
  (for its time to live, ``5m`` or ``1h``; ``expire_cache()`` ends them all).
  A token is a word.
- Errors in the API's shape, ``{"type": "error", "error": {"type", "message"},
  "request_id"}``, with its statuses: 400 ``invalid_request_error``, 401
  ``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``,
  413 ``request_too_large``, 429 ``rate_limit_error`` (with ``retry-after`` if
  injected so), 500 ``api_error``, 529 ``overloaded_error``...
- Message Batches: ``POST /v1/messages/batches`` (``requests`` of
  ``custom_id`` and ``params``), ``GET /v1/messages/batches`` (newest first,
  ``limit``, ``after_id``, ``before_id``), ``GET /v1/messages/batches/{id}``
  (each look moves a batch on: ``batch_lines_per_poll`` requests answered per
  look, then ``ended``; or the rest ``expired`` after ``batch_expire_after``
  looks, ``batches_to_expire`` limiting how many), ``POST .../cancel``
  (``canceling``, then ``ended`` with the rest ``canceled``), ``DELETE`` of an
  ended batch, and ``GET .../results``, the JSONL of ``succeeded``,
  ``errored``, ``canceled`` and ``expired`` results. As the API does, a batch
  in progress counts all its requests as ``processing``; ``batch_progress(id)``
  says how many it has answered.

Faults are injected as in ``FakeOpenAIServer`` (``push``, ``rule``: a status
with headers, ``hang``, ``malformed``, ``length`` (a ``max_tokens`` stop),
``drop``); in a batch a status makes that request ``errored``. ``answer(text,
params)`` scripts the answers: ``text`` is the system prompt and the messages'
texts, one per line, as ``FakeOpenAIServer`` gives it, and ``messages_of(params)``
the request as OpenAI-style messages, so one script answers both servers. Run
one as a process::

    python -m atk_core.testing.anthropic_server --port 8012
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable

from .fake_http import FakeHTTPServer, serve_from_command_line

VERSIONS = ("2023-06-01", "2026-10-21")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
PARAMETERS = {"model", "max_tokens", "messages", "system", "stop_sequences", "metadata", "tools",
              "tool_choice", "output_config", "cache_control", "service_tier", "thinking", "stream",
              "inference_geo", "container", "speed", "diagnostics"}
SAMPLING = {"temperature", "top_p", "top_k"}  # version 2023-06-01 only
TTL = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class FakeAnthropicServer(FakeHTTPServer):
    """Start with ``start()`` (or ``with``); ``url`` is the base_url to give a client.

    ``api_key``: the one key accepted (any, if None); ``models``: the model names
    it knows (any, if None; another is a 404); ``cache_min_tokens``: the shortest
    prefix it caches.
    """

    thread_name = "fake-anthropic"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                 answer: Callable[[str, dict], Any] | None = None, record: bool = True,
                 cpu_ms: float = 0.0, api_key: str | None = None, models=None,
                 cache_min_tokens: int = 1024):
        super().__init__(host, port, delay=delay, answer=answer, record=record, cpu_ms=cpu_ms)
        self.api_key = api_key
        self.models = tuple(models) if models is not None else None
        self.cache_min_tokens = cache_min_tokens
        self._cache: dict[str, float] = {}  # prefix digest -> when it expires (monotonic)
        self._ids = 0
        # Message Batches
        self.batches: dict[str, dict] = {}  # id -> the batch object, plus its private state
        self.batch_lines_per_poll: int | None = None  # None: all at the first look
        self.batch_expire_after: int | None = None  # looks before a batch expires
        self.batches_to_expire: int | None = None  # how many batches may expire (None: any)
        self.drop_after_create = 0  # batches whose creation is not answered (the connection drops)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def expire_cache(self) -> None:
        """Every cached prefix reaches the end of its time to live."""
        with self._lock:
            self._cache.clear()

    def batch_progress(self, batch_id: str) -> int:
        """How many of a batch's requests it has answered (the API says so only at its end)."""
        with self._lock:
            return len(self.batches[batch_id]["_results"])

    @staticmethod
    def messages_of(params: dict) -> list[dict]:
        """A request's system prompt and messages as OpenAI-style ``{role, content}``
        messages, each content one text: what a script written for both servers reads."""
        system = _text_of(params.get("system"))
        turns = [{"role": m.get("role"), "content": _text_of(m.get("content"))}
                 for m in params.get("messages") or [] if isinstance(m, dict)]
        return ([{"role": "system", "content": system}] if system else []) + turns

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, method, path, headers, body, writer) -> bool:
        path, _, query = path.partition("?")
        refused = self._refused(headers)
        if refused is not None:
            self._send_error(writer, *refused)
            return True
        if body:
            try:
                payload = json.loads(body)
            except json.JSONDecodeError:
                self._send_error(writer, 400, "There was an issue with the request body: it is not valid JSON")
                return True
        else:
            payload = {}
        if path == "/v1/messages" and method == "POST":
            return await self._messages(payload, headers, writer)
        if path == "/v1/messages/count_tokens" and method == "POST":
            problem = _problem(dict(payload, max_tokens=1), headers.get("anthropic-version"))
            if problem:
                self._send_error(writer, 400, problem)
            else:
                self._send(writer, 200, {"input_tokens": sum(t for _, t, _ in _blocks(payload))})
            return True
        if path == "/v1/models" and method == "GET":
            names = self.models or ("claude-fake",)
            self._send(writer, 200, {"data": [{"type": "model", "id": name, "display_name": name,
                                               "created_at": _iso(0)} for name in names],
                                     "has_more": False, "first_id": names[0], "last_id": names[-1]})
            return True
        if path.startswith("/v1/messages/batches"):
            return self._batch_api(method, path, _query(query), payload, headers, writer)
        self._send_error(writer, 404, f"Not found: {method} {path}")
        return True

    def _refused(self, headers):
        key = headers.get("x-api-key") or (headers.get("authorization") or "").removeprefix("Bearer ").strip()
        if not key:
            return 401, "x-api-key header is required"
        if self.api_key is not None and key != self.api_key:
            return 401, "invalid x-api-key"
        version = headers.get("anthropic-version")
        if not version:
            return 400, "anthropic-version: header is required"
        if version not in VERSIONS:
            return 400, f"anthropic-version: unknown version {version!r}"
        return None

    async def _messages(self, params, headers, writer) -> bool:
        text = _prompt_text(params)
        entry = {"path": "/v1/messages", "payload": params, "headers": dict(headers),
                 "authorization": headers.get("authorization") or headers.get("x-api-key")}
        return await self._serve_request(
            text, entry, writer, lambda behaviour: self._reply(behaviour, params, text, headers, writer))

    malformed_body = b'{"id": "msg_x", "type": "message", "content": [ {"oops'

    def _reply(self, behaviour, params, text, headers, writer) -> None:
        with self._lock:
            status, answer = self._answer(params, text, headers.get("anthropic-version"),
                                          cut=behaviour.kind == "length")
        if status != 200:
            self._send_error(writer, status, answer)
        else:
            self._send(writer, 200, answer, {"request-id": _request_id(answer["id"])})

    def _answer(self, params, text, version, *, cut=False):
        """``(200, the message)``, or ``(status, why)`` for a request the API refuses (called
        under the lock)."""
        problem = _problem(params, version)
        if problem:
            return 400, problem
        if self.models is not None and params["model"] not in self.models:
            return 404, f"model: {params['model']}"
        try:
            content, stop, sequence = self._content(params, text, cut)
        except Exception as exc:  # the test's script failed: an API error that says so
            return 500, f"the scripted answer failed: {type(exc).__name__}: {exc}"
        self._ids += 1
        number = self._ids
        written = json.dumps([b.get("input", b.get("text")) for b in content], sort_keys=True)
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        self._answered[key] = self._answered.get(key, 0) + 1
        usage = self._usage(params)
        usage["output_tokens"] = len(written.split())
        for block in content:
            if block["type"] == "tool_use":
                block["id"] = f"toolu_{number:06d}"
        return 200, {"id": f"msg_{number:06d}", "type": "message", "role": "assistant",
                     "model": params["model"], "content": content, "stop_reason": stop,
                     "stop_sequence": sequence, "usage": usage}

    def _content(self, params, text, cut):
        tool = _forced_tool(params)
        schema = tool["input_schema"] if tool else _format_schema(params)
        value = self._answer_value(text, params, schema)
        if tool is not None:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if isinstance(value, dict):
                if cut:  # the tool's input was cut off: what arrived is not a whole object
                    return [{"type": "tool_use", "name": tool["name"], "input": {}}], "max_tokens", None
                return [{"type": "tool_use", "name": tool["name"], "input": value}], "tool_use", None
        written = value if isinstance(value, str) else json.dumps(value)
        if cut:
            return [{"type": "text", "text": written[:max(1, len(written) // 2)]}], "max_tokens", None
        for sequence in params.get("stop_sequences") or ():
            if sequence in written:
                return [{"type": "text", "text": written[:written.index(sequence)]}], "stop_sequence", sequence
        return [{"type": "text", "text": written}], "end_turn", None

    def _usage(self, params) -> dict:
        """The request's input tokens as the API splits them (called under the lock): read
        from the cache (the longest prefix up to a breakpoint that it holds), written to it
        (up to the last breakpoint long enough to be cached), and the rest."""
        blocks = _blocks(params)
        now, total, points = time.monotonic(), 0, []
        digest = hashlib.sha256(str(params.get("model")).encode())
        for identity, tokens, ttl in blocks:
            digest.update(identity.encode() + b"\0")
            total += tokens
            if ttl is not None:
                points.append((digest.hexdigest(), total, ttl))
        read = 0
        for key, tokens, ttl in reversed(points):
            if self._cache.get(key, 0) > now:
                read = tokens
                break
        written, longest_ttl = 0, "5m"
        for key, tokens, ttl in points:
            if tokens >= self.cache_min_tokens:
                self._cache[key] = now + TTL[ttl]  # written, or its time to live renewed
                if tokens > read:
                    written, longest_ttl = tokens - read, ttl
        return {"input_tokens": total - read - written, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": written if longest_ttl == "5m" else 0,
                                   "ephemeral_1h_input_tokens": written if longest_ttl == "1h" else 0},
                "output_tokens": 0, "service_tier": "standard"}

    def _send_error(self, writer, status, message, headers=None):
        """An error reply in the API's shape, with its type and a request id."""
        request_id = _request_id(f"{time.monotonic_ns()}")
        self._send(writer, status, {"type": "error",
                                    "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
                                    "request_id": request_id},
                   {"request-id": request_id, **(headers or {})})

    # -- Message Batches ----------------------------------------------------------------------

    def _batch_api(self, method, path, query, payload, headers, writer) -> bool:
        parts = path.strip("/").split("/")[3:]  # after v1/messages/batches
        with self._lock:
            if not parts and method == "POST":
                return self._create_batch(payload, headers, writer)
            if not parts and method == "GET":
                return self._list_batches(query, writer)
            batch = self.batches.get(parts[0]) if parts else None
            if batch is None:
                self._send_error(writer, 404, f"message_batch: {parts[0] if parts else ''} not found")
                return True
            if method == "GET" and len(parts) == 1:
                self._advance(batch)
            elif method == "POST" and parts[1:] == ["cancel"]:
                if batch["processing_status"] == "in_progress":
                    batch["processing_status"] = "canceling"
                    batch["cancel_initiated_at"] = _iso(time.time())
            elif method == "DELETE" and len(parts) == 1:
                if batch["processing_status"] != "ended":
                    self._send_error(writer, 400, "a batch in progress must be canceled before it is deleted")
                    return True
                del self.batches[parts[0]]
                self._send(writer, 200, {"id": parts[0], "type": "message_batch_deleted"})
                return True
            elif method == "GET" and parts[1:] == ["results"]:
                if batch["processing_status"] != "ended":
                    self._send_error(writer, 400, f"message_batch {parts[0]} has not ended: no results yet")
                    return True
                lines = [{"custom_id": custom_id, "result": result}
                         for custom_id, result in sorted(batch["_results"].items())]
                self._send_raw(writer, 200, "".join(json.dumps(line) + "\n" for line in lines).encode(),
                               {}, content_type="application/binary")
                return True
            else:
                self._send_error(writer, 404, f"Not found: {method} {path}")
                return True
            self._send(writer, 200, _public(batch))
            return True

    def _create_batch(self, payload, headers, writer) -> bool:
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            self._send_error(writer, 400, "requests: at least one request is required")
            return True
        seen = set()
        for index, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                self._send_error(writer, 400, f"requests.{index}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
                return True
            if custom_id in seen:
                self._send_error(writer, 400, f"requests.{index}.custom_id: {custom_id!r} is not unique")
                return True
            if not isinstance(request.get("params"), dict):
                self._send_error(writer, 400, f"requests.{index}.params: Field required")
                return True
            seen.add(custom_id)
        batch_id = f"msgbatch_{len(self.batches) + 1:04d}"
        now = time.time()
        self.batches[batch_id] = {
            "id": batch_id, "type": "message_batch", "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0,
                               "canceled": 0, "expired": 0},
            "ended_at": None, "created_at": _iso(now), "expires_at": _iso(now + 86400),
            "archived_at": None, "cancel_initiated_at": None, "results_url": None,
            "_requests": requests, "_results": {}, "_looks": 0,
            "_version": headers.get("anthropic-version")}
        if self.drop_after_create > 0:  # made, but the client never hears of it
            self.drop_after_create -= 1
            return False
        self._send(writer, 200, _public(self.batches[batch_id]))
        return True

    def _list_batches(self, query, writer) -> bool:
        listed = [_public(b) for b in reversed(list(self.batches.values()))]  # newest first
        ids = [b["id"] for b in listed]
        if query.get("after_id") in ids:
            listed = listed[ids.index(query["after_id"]) + 1:]
        elif query.get("before_id") in ids:
            listed = listed[:ids.index(query["before_id"])]
        try:
            limit = min(1000, max(1, int(query.get("limit", 20))))
        except ValueError:
            self._send_error(writer, 400, "limit: Input should be a valid integer")
            return True
        page = listed[:limit]
        self._send(writer, 200, {"data": page, "has_more": len(listed) > limit,
                                 "first_id": page[0]["id"] if page else None,
                                 "last_id": page[-1]["id"] if page else None})
        return True

    def _advance(self, batch) -> None:
        """One look at a batch moves it on (see the module's docstring); called under the lock."""
        if batch["processing_status"] == "ended":
            return
        if batch["processing_status"] == "canceling":
            return self._end(batch, "canceled")
        batch["_looks"] += 1
        todo = [r for r in batch["_requests"] if r["custom_id"] not in batch["_results"]]
        take = len(todo) if self.batch_lines_per_poll is None else self.batch_lines_per_poll
        for request in todo[:take]:
            batch["_results"][request["custom_id"]] = self._batch_result(request, batch["_version"])
        if len(batch["_results"]) == len(batch["_requests"]):
            self._end(batch, None)
        elif self.batch_expire_after is not None and batch["_looks"] >= self.batch_expire_after \
                and self.batches_to_expire != 0:
            if self.batches_to_expire is not None:
                self.batches_to_expire -= 1
            self._end(batch, "expired")

    def _batch_result(self, request, version) -> dict:
        params = request["params"]
        text = _prompt_text(params)
        behaviour = self._behaviour_for_locked(text)
        self._note({"path": "/v1/messages", "payload": params, "headers": {}, "authorization": None,
                    "behaviour": behaviour.kind, "batch": True, "custom_id": request["custom_id"]})
        if behaviour.kind == "status":
            return _errored(behaviour.status, f"injected HTTP {behaviour.status}")
        status, answer = self._answer(params, text, version, cut=behaviour.kind == "length")
        if status != 200:
            return _errored(status, answer)
        return {"type": "succeeded", "message": answer}

    def _end(self, batch, rest: str | None) -> None:
        """End a batch: requests not answered yet are ``rest`` (expired, canceled)."""
        for request in batch["_requests"]:
            batch["_results"].setdefault(request["custom_id"], {"type": rest})
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for result in batch["_results"].values():
            counts[result["type"]] += 1
        batch.update(processing_status="ended", request_counts=counts, ended_at=_iso(time.time()),
                     results_url=f"{self.url}/v1/messages/batches/{batch['id']}/results")


# -- the request, read as the API reads it ------------------------------------------------------


def _text_of(content) -> str:
    """A system prompt's or a message's text: a string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _prompt_text(params) -> str:
    """The system prompt and every message's text, one per line (as FakeOpenAIServer sees a
    chat request with its system message first)."""
    return "\n".join(m["content"] for m in FakeAnthropicServer.messages_of(params))


def _blocks(params) -> list[tuple[str, int, str | None]]:
    """The prompt in the order the cache reads it (tools, system, messages): each block's
    identity, tokens, and the time to live of a breakpoint on it (None: not one)."""
    blocks = []

    def add(where, block):
        block = dict(block) if isinstance(block, dict) else {"type": "text", "text": str(block)}
        control = block.pop("cache_control", None)
        ttl = (control.get("ttl") or "5m") if isinstance(control, dict) else None
        text = block.get("text") if block.get("type") == "text" else json.dumps(block, sort_keys=True)
        blocks.append([f"{where}:{json.dumps(block, sort_keys=True)}", len(str(text).split()), ttl])

    for tool in params.get("tools") or ():
        add("tool", tool)
    system = params.get("system")
    for block in ([system] if isinstance(system, str) else system or ()):
        add("system", block)
    for message in params.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in ([content] if isinstance(content, str) else content or ()):
            add(str(message.get("role")), block)
    control = params.get("cache_control")  # automatic caching: a breakpoint on the last block
    if isinstance(control, dict) and blocks and blocks[-1][2] is None:
        blocks[-1][2] = control.get("ttl") or "5m"
    return [tuple(b) for b in blocks]


def _problem(params, version) -> str | None:
    """Why the API refuses these Messages parameters (its words), or None."""
    if not isinstance(params, dict):
        return "request body must be a JSON object"
    allowed = PARAMETERS | (SAMPLING if version == "2023-06-01" else set())
    for name in sorted(params):
        if name not in allowed:
            return f"{name}: Extra inputs are not permitted"
    if not isinstance(params.get("model"), str) or not params["model"]:
        return "model: Field required"
    if not isinstance(params.get("max_tokens"), int) or isinstance(params["max_tokens"], bool) \
            or params["max_tokens"] < 0:
        return "max_tokens: Field required (a whole number, at least 0)"
    for name in SAMPLING & set(params):
        value = params[name]
        if not isinstance(value, (int, float)) or (name != "top_k" and not 0 <= value <= 1):
            return f"{name}: Input should be a number from 0 to 1"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    breakpoints = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        problem, count = _content_problem(message.get("content"), f"messages.{i}.content")
        if problem:
            return problem
        breakpoints += count
    system = params.get("system")
    if system is not None:
        if isinstance(system, list):
            problem, count = _content_problem(system, "system")
            if problem:
                return problem
            breakpoints += count
        elif not isinstance(system, str):
            return "system: Input should be a string or a list of text blocks"
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        return "stop_sequences: Input should be a list of strings"
    tools = params.get("tools") or []
    names = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            return f"tools.{i}.name: Field required"
        if not isinstance(tool.get("input_schema"), dict) or tool["input_schema"].get("type") != "object":
            return f"tools.{i}.input_schema.type: Input should be 'object'"
        names.add(tool["name"])
        breakpoints += "cache_control" in tool
    choice = params.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice["type"] == "tool" and choice.get("name") not in names:
            return f"tool_choice.name: no tool named {choice.get('name')!r}"
    output = params.get("output_config")
    if output is not None:
        form = output.get("format") if isinstance(output, dict) else None
        if form is not None and (not isinstance(form, dict) or form.get("type") != "json_schema"
                                 or not isinstance(form.get("schema"), dict)):
            return "output_config.format: Input should be {type: json_schema, schema: {...}}"
    if breakpoints > MAX_BREAKPOINTS:
        return (f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided."
                f" Found {breakpoints}.")
    return None


def _content_problem(content, where) -> tuple[str | None, int]:
    """A message's (or the system prompt's) content: a string, or text blocks; and how many
    cache breakpoints it sets."""
    if isinstance(content, str):
        return (f"{where}: text content must be non-empty" if not content else None), 0
    if not isinstance(content, list) or not content:
        return f"{where}: Input should be a string or a non-empty list of blocks", 0
    count = 0
    for j, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            return f"{where}.{j}.type: this server takes text blocks only", 0
        if not isinstance(block.get("text"), str) or not block["text"]:
            return f"{where}.{j}.text: text content blocks must be non-empty", 0
        control = block.get("cache_control")
        if control is not None:
            if not isinstance(control, dict) or control.get("type") != "ephemeral" \
                    or control.get("ttl", "5m") not in TTL:
                return f"{where}.{j}.cache_control: Input should be {{type: ephemeral, ttl: 5m | 1h}}", 0
            count += 1
    return None, count


def _forced_tool(params):
    choice, tools = params.get("tool_choice") or {}, params.get("tools") or []
    if choice.get("type") == "tool":
        return next(t for t in tools if t["name"] == choice["name"])
    if choice.get("type") == "any" and tools:
        return tools[0]
    return None


def _format_schema(params):
    form = (params.get("output_config") or {}).get("format") or {}
    return form.get("schema") if form.get("type") == "json_schema" else None


def _errored(status: int, message: str) -> dict:
    return {"type": "errored", "error": {"type": "error", "error": {
        "type": ERROR_TYPES.get(status, "api_error"), "message": message}}}


def _public(batch) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def _request_id(seed: str) -> str:
    return "req_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _query(query: str) -> dict:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(query))


def main():
    serve_from_command_line(FakeAnthropicServer, "A fake Anthropic Messages API server.", 8012,
                            [("--cache-min-tokens", "cache_min_tokens", int, 1024)])


if __name__ == "__main__":
    main()
