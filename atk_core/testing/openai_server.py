"""A small OpenAI-compatible HTTP server for tests and benchmarks, with fault injection.

It speaks enough of the API (``/v1/chat/completions``, ``/v1/completions``,
``/v1/models``) for the openai SDK, answers instantly by default, and records
every request. It also runs the Batch API as OpenAI documents it: ``POST
/v1/files`` (a multipart upload, purpose ``batch``), ``POST /v1/batches``,
``GET /v1/batches/{id}`` (each look moves the batch on: validating, then
``batch_lines_per_poll`` lines answered per look, then completed; or expired
after ``batch_expire_after`` looks, with the lines done so far in its output
file and the rest in its error file; ``batches_to_expire`` limits how many), ``POST /v1/batches/{id}/cancel`` and
``GET /v1/files/{id}/content``. Faults are queued (``push``) or matched by prompt text
(``rule``): a status code with headers, a hang, a malformed body, a cut-off
answer, a dropped connection (``fake_http``). It is a real server on a real socket
(asyncio, HTTP/1.1 keep-alive), run on a thread (``start()``) or as a process::

    python -m atk_core.testing.openai_server --port 8011
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

from .fake_http import FakeHTTPServer, serve_from_command_line


class FakeOpenAIServer(FakeHTTPServer):
    """Start with ``start()``; ``url`` is the base_url to give a client."""

    thread_name = "fake-openai"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                 answer: Callable[[str, dict], Any] | None = None, record: bool = True,
                 cpu_ms: float = 0.0):
        super().__init__(host, port, delay=delay, answer=answer, record=record, cpu_ms=cpu_ms)
        # the Batch API
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}  # id -> the batch object, plus its private state
        self.batch_lines_per_poll: int | None = None  # None: all at the first look in progress
        self.batch_expire_after: int | None = None  # looks in progress before a batch expires
        self.batches_to_expire: int | None = None  # how many batches may expire (None: any)
        self.drop_after_create = 0  # batches whose creation is not answered (the connection drops)

    # -- control -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- HTTP ------------------------------------------------------------------------------

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
        if "/files" in path or "/batches" in path:
            self._batch_api(method, path, headers, body, writer)
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
        entry = {"path": path, "payload": payload, "authorization": headers.get("authorization"),
                 "headers": dict(headers)}  # names in lower case
        return await self._serve_request(
            text, entry, writer, lambda behaviour: self._respond(behaviour, payload, chat, text, body, writer))

    malformed_body = b'{"id": "x", "choices": [ {"oops'

    def _respond(self, behaviour, payload, chat, text, body, writer) -> None:
        content = self._content(payload, chat, text)
        finish = "stop"
        if behaviour.kind == "length":
            content, finish = content[: max(1, len(content) // 2)], "length"
        with self._lock:
            key = hashlib.sha256(body).hexdigest() if self.record else ""
            self._answered[key] = self._answered.get(key, 0) + 1
        self._send(writer, 200, _completion(payload, chat, content, finish, text))

    # -- the Batch API -----------------------------------------------------------------------

    def _batch_api(self, method, path, headers, body, writer) -> None:
        parts = path.strip("/").split("/")[1:]  # after "v1"
        with self._lock:
            if method == "POST" and parts == ["files"]:
                fields = _multipart(headers.get("content-type", ""), body)
                if fields.get("purpose", (None, b""))[1] != b"batch" or "file" not in fields:
                    return self._send(writer, 400, {"error": {"message": "need purpose=batch and a file"}})
                name, data = fields["file"]
                file_id = f"file-{len(self.files) + 1:04d}"
                self.files[file_id] = data
                return self._send(writer, 200, {"id": file_id, "object": "file", "bytes": len(data),
                                                "created_at": int(time.time()), "filename": name,
                                                "purpose": "batch"})
            if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
                if parts[1] not in self.files:
                    return self._send(writer, 404, {"error": {"message": f"no file {parts[1]}"}})
                return self._send_raw(writer, 200, self.files[parts[1]], {})
            if method == "POST" and parts == ["batches"]:
                return self._create_batch(json.loads(body or b"{}"), writer)
            if method == "GET" and parts == ["batches"]:  # newest first, as OpenAI lists them
                listed = [{k: v for k, v in b.items() if not k.startswith("_")}
                          for b in reversed(list(self.batches.values()))]
                return self._send(writer, 200, {"object": "list", "data": listed[:100],
                                                "has_more": len(listed) > 100})
            if len(parts) >= 2 and parts[0] == "batches" and parts[1] in self.batches:
                batch = self.batches[parts[1]]
                if method == "GET" and len(parts) == 2:
                    self._advance(batch)
                elif method == "POST" and parts[2:] == ["cancel"]:
                    if batch["status"] in ("validating", "in_progress"):
                        self._finish(batch, "cancelled")
                else:
                    return self._send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
                return self._send(writer, 200, {k: v for k, v in batch.items() if not k.startswith("_")})
        self._send(writer, 404, {"error": {"message": f"no route {method} {path}"}})

    def _create_batch(self, request, writer) -> None:
        data = self.files.get(request.get("input_file_id"))
        endpoint = request.get("endpoint")
        if data is None:
            return self._send(writer, 400, {"error": {"message": "input_file_id: no such file"}})
        if request.get("completion_window") != "24h" or endpoint not in ("/v1/chat/completions",
                                                                         "/v1/completions"):
            return self._send(writer, 400, {"error": {"message": "bad endpoint or completion_window"}})
        lines = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
        ids = [line.get("custom_id") for line in lines]
        if len(set(ids)) != len(ids) or any(line.get("url") != endpoint for line in lines):
            return self._send(writer, 400, {"error": {"message": "custom_id repeated, or a line's url"
                                                                 " is not the batch's endpoint"}})
        batch_id = f"batch_{len(self.batches) + 1:04d}"
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": endpoint, "input_file_id": request["input_file_id"],
            "completion_window": "24h", "status": "validating", "created_at": int(time.time()),
            "output_file_id": None, "error_file_id": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": request.get("metadata") or {},
            "_lines": lines, "_done": [], "_looks": 0}
        if self.drop_after_create > 0:  # made, but the client never hears of it
            self.drop_after_create -= 1
            writer.close()
            return
        self._send(writer, 200, {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")})

    def _advance(self, batch) -> None:
        """One look at a batch moves it on (see the module's docstring)."""
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
            return
        if batch["status"] != "in_progress":
            return
        batch["_looks"] += 1
        lines = batch["_lines"]
        take = len(lines) if self.batch_lines_per_poll is None else self.batch_lines_per_poll
        for line in lines[len(batch["_done"]):len(batch["_done"]) + take]:
            batch["_done"].append(self._batch_answer(line, batch["endpoint"]))
        counts = batch["request_counts"]
        counts["completed"] = sum(1 for d in batch["_done"] if d["error"] is None)
        counts["failed"] = len(batch["_done"]) - counts["completed"]
        if len(batch["_done"]) == len(lines):
            self._finish(batch, "completed")
        elif self.batch_expire_after is not None and batch["_looks"] >= self.batch_expire_after \
                and self.batches_to_expire != 0:
            if self.batches_to_expire is not None:
                self.batches_to_expire -= 1
            self._finish(batch, "expired")

    def _batch_answer(self, line, endpoint) -> dict:
        payload, chat = line["body"], endpoint.endswith("/chat/completions")
        text = _prompt_text(payload, chat)
        behaviour = self._behaviour_for_locked(text)
        self.request_count += 1
        if self.record:
            self.requests.append({"path": endpoint, "payload": payload, "authorization": None, "headers": {},
                                  "time": time.monotonic(), "behaviour": behaviour.kind, "batch": True})
        answer_id = f"batch_req_{self.request_count}"
        if behaviour.kind == "status":
            body = {"error": {"message": f"injected HTTP {behaviour.status}", "type": "injected"}}
            return {"id": answer_id, "custom_id": line["custom_id"],
                    "response": {"status_code": behaviour.status, "request_id": answer_id, "body": body},
                    "error": None}
        content = self._content(payload, chat, text)
        key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        self._answered[key] = self._answered.get(key, 0) + 1
        return {"id": answer_id, "custom_id": line["custom_id"],
                "response": {"status_code": 200, "request_id": answer_id,
                             "body": _completion(payload, chat, content, "stop", text)},
                "error": None}

    def _finish(self, batch, status) -> None:
        """End a batch: its answered lines in an output file; the rest (expired, cancelled)
        and the failed ones in an error file."""
        batch["status"] = status
        done = {d["custom_id"] for d in batch["_done"]}
        code = {"expired": "batch_expired", "cancelled": "batch_cancelled"}.get(status)
        errors = [{"id": None, "custom_id": line["custom_id"], "response": None,
                   "error": {"code": code, "message": f"This request could not be executed before"
                                                      f" the batch was {status}."}}
                  for line in batch["_lines"] if line["custom_id"] not in done] if code else []
        answered = [d for d in batch["_done"] if d["response"]["status_code"] == 200]
        failed = [d for d in batch["_done"] if d["response"]["status_code"] != 200]
        for name, records in (("output_file_id", answered), ("error_file_id", failed + errors)):
            if records:
                file_id = f"file-{len(self.files) + 1:04d}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
                batch[name] = file_id
        batch["request_counts"]["failed"] = len(failed) + len(errors)
        batch[f"{status}_at"] = int(time.time())

    def _content(self, payload, chat, text) -> str:
        value = self._answer_value(text, payload, _schema_of(payload))
        return value if isinstance(value, str) else json.dumps(value)


def _multipart(content_type: str, body: bytes) -> dict:
    """The fields of a multipart/form-data body: name -> (filename or None, bytes)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
    fields = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


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
    serve_from_command_line(FakeOpenAIServer, "A fake OpenAI-compatible server.", 8011)


if __name__ == "__main__":
    main()
